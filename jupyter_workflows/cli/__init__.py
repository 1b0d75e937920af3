"""The ``jupyter-workflows`` command line: :mod:`.app` wires flags, :mod:`.logic` does the work."""
