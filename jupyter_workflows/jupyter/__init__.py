"""Jupyter surfaces of jupyter_workflows: the live graph widget and the notebook magics."""
