"""``%workflow form NAME``: an ipywidgets form built from a workflow's declared parameters.

Design
------
* One input per parameter, picked from its type: ``string`` → ``Text`` (``Dropdown`` when it has
  an ``enum``), ``integer`` → ``IntText``, ``number`` → ``FloatText``, ``boolean`` →
  ``Checkbox``, ``array``/``object``/``any`` → ``Textarea`` read as YAML (so ``[eu, us]`` is a
  list, as with ``-p`` on the command line). Required parameters are marked ``*``.
* The form does not validate on its own: each field is checked with the same function runs use
  (:func:`~jupyter_workflows.spec.params.check_value`) as the user types, and the Run button goes
  through :func:`~jupyter_workflows.spec.params.resolve_parameters` and ``Workflow.run``, so the
  form can never accept what a run would refuse, nor refuse what it would accept.
* Below the button, the run's graph follows it live (:mod:`.live`).
* :class:`WorkflowForm` exposes its parts (``fields``, ``errors``, ``run_button``, ``message``,
  ``last_run``) and :meth:`WorkflowForm.submit`, so tests and programs drive it without a browser.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import yaml

from ..exceptions import WorkflowError
from ..spec.params import check_value

if TYPE_CHECKING:  # pragma: no cover
    from ..definition import Workflow
    from ..engine.run import Run
    from ..spec.models import ParameterSpec

__all__ = ["WorkflowForm", "build_form"]

_OMIT = object()
"""A field left empty: the parameter's default applies."""

_YAML_TYPES = ("array", "object", "any")


class _Invalid(Exception):
    """A field's text cannot be read (bad YAML)."""


def _label(name: str, param: ParameterSpec) -> str:
    return f"{name} *" if param.required else name


def _yaml_text(value: Any) -> str:
    if value is None:
        return ""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=80).strip()


def _make_field(name: str, param: ParameterSpec) -> widgets.Widget:
    style = {"description_width": "initial"}
    layout = widgets.Layout(width="min(100%, 32em)")
    description = _label(name, param)
    tooltip = param.description or f"{param.type}{' (required)' if param.required else ''}"
    default = param.default
    if param.enum is not None:
        options: list[tuple[str, Any]] = [(str(v), v) for v in param.enum]
        if not param.required and default is None:
            options.insert(0, ("", None))
        value = default if default in param.enum else options[0][1]
        return widgets.Dropdown(
            options=options,
            value=value,
            description=description,
            tooltip=tooltip,
            style=style,
            layout=layout,
        )
    if param.type == "string":
        return widgets.Text(
            value="" if default is None else str(default),
            description=description,
            tooltip=tooltip,
            placeholder=param.description or "",
            style=style,
            layout=layout,
        )
    if param.type == "integer":
        return widgets.IntText(
            value=int(default) if isinstance(default, int) else 0,
            description=description,
            tooltip=tooltip,
            style=style,
            layout=layout,
        )
    if param.type == "number":
        return widgets.FloatText(
            value=float(default) if isinstance(default, (int, float)) else 0.0,
            description=description,
            tooltip=tooltip,
            style=style,
            layout=layout,
        )
    if param.type == "boolean":
        return widgets.Checkbox(
            value=bool(default),
            description=description,
            tooltip=tooltip,
            indent=False,
            style=style,
            layout=layout,
        )
    return widgets.Textarea(
        value=_yaml_text(default),
        description=description,
        tooltip=tooltip,
        placeholder=f"{param.type}, as YAML: " + ("[a, b]" if param.type == "array" else "{k: v}"),
        rows=2,
        style=style,
        layout=layout,
    )


def _read(field: widgets.Widget, param: ParameterSpec) -> Any:
    """The value a field stands for, ``_OMIT`` when left empty; raises ``_Invalid``."""
    value = field.value
    if isinstance(field, widgets.Textarea):
        if not value.strip():
            return _OMIT
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise _Invalid(f"not valid YAML: {problem}{where}") from None
    if isinstance(field, widgets.Text) and value == "" and param.default is None:
        return _OMIT
    if isinstance(field, widgets.Dropdown) and value is None and not param.required:
        return _OMIT
    return value


class WorkflowForm(widgets.VBox):
    """A form for a workflow's parameters, a Run button, and the run's live graph below.

    Attributes
    ----------
    workflow:
        The workflow it runs.
    fields:
        Parameter name → input widget.
    errors:
        Parameter name → ``HTML`` widget with that field's validation message (empty when fine).
    run_button:
        Starts a run with the current values.
    message:
        ``HTML``: the form-wide message (a refused run, the run started).
    output:
        ``VBox`` that holds the live graph of the latest run.
    last_run:
        The latest run started from this form, or None.
    """

    def __init__(self, workflow: Workflow, **kwargs: Any) -> None:
        self.workflow = workflow
        self.last_run: Run | None = None
        self.fields: dict[str, widgets.Widget] = {}
        self.errors: dict[str, widgets.HTML] = {}
        rows: list[widgets.Widget] = []
        title = f"<b>{html.escape(workflow.name)}</b>"
        if workflow.description:
            title += f" — {html.escape(workflow.description)}"
        rows.append(widgets.HTML(title))
        for name, param in workflow.spec.parameters.items():
            field = _make_field(name, param)
            error = widgets.HTML("")
            field.observe(lambda _change, n=name: self._check(n), names="value")
            self.fields[name] = field
            self.errors[name] = error
            rows.append(widgets.VBox([field, error]))
        if not self.fields:
            rows.append(widgets.HTML("<i>no parameters</i>"))
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.run_button.on_click(lambda _button: self.submit())
        self.message = widgets.HTML("")
        self.output = widgets.VBox([])
        rows += [widgets.HBox([self.run_button, self.message]), self.output]
        super().__init__(rows, **kwargs)
        for name in self.fields:
            self._check(name)

    # -- reading and checking -------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The parameters the fields stand for (empty fields left out: defaults apply).

        Raises
        ------
        ParameterError
            When a field cannot be read (bad YAML), naming the parameter.
        """
        from ..exceptions import ParameterError

        out: dict[str, Any] = {}
        for name, field in self.fields.items():
            param = self.workflow.spec.parameters[name]
            try:
                value = _read(field, param)
            except _Invalid as exc:
                raise ParameterError(f"parameter {name!r}: {exc}") from None
            if value is not _OMIT:
                out[name] = value
        return out

    def _check(self, name: str) -> bool:
        """Show the field's problem under it; True when it has none."""
        param = self.workflow.spec.parameters[name]
        try:
            value = _read(self.fields[name], param)
        except _Invalid as exc:
            problem: str | None = str(exc)
        else:
            if value is _OMIT:
                problem = "required" if param.required else None
            else:
                problem = check_value(param, value)
        self.errors[name].value = (
            f'<span style="color:#dc2626;font-size:12px">{html.escape(problem)}</span>'
            if problem
            else ""
        )
        return problem is None

    # -- running --------------------------------------------------------------------------------
    def submit(self) -> Run | None:
        """Check every field and start a run (what the Run button does).

        Returns the run, or None when the parameters were refused (the reason is in
        :attr:`message` and under the fields).
        """
        from ..spec.params import resolve_parameters
        from .live import bind_run, widget_for_workflow

        fine = all([self._check(name) for name in self.fields])
        try:
            params = self.values()
            resolve_parameters(self.workflow.spec, params)  # the same check the run does
            if not fine:
                raise WorkflowError("fix the fields marked in red")
            run = self.workflow.run(params, wait=False)
        except WorkflowError as exc:
            self._say(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, error=True)
            return None
        self.last_run = run
        self._say(f"run <code>{html.escape(run.run_id)}</code> started")
        binding = bind_run(run, widget_for_workflow(self.workflow))
        self.output.children = (binding.widget,)
        return run

    def _say(self, text: str, *, error: bool = False) -> None:
        color = "#dc2626" if error else "#374151"
        body = html.escape(text) if error else text
        self.message.value = f'<span style="color:{color}">{body}</span>'


def build_form(workflow: Workflow) -> WorkflowForm:
    """A :class:`WorkflowForm` for ``workflow`` (``%workflow form NAME``)."""
    return WorkflowForm(workflow)
