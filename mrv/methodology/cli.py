"""``mrv methodologies list|show`` and ``mrv calculate``.

Mounted by :mod:`mrv.cli` (``app.add_typer(methodologies_app, name="methodologies")`` and
``app.command("calculate")(calculate)``). Only Typer and Rich are imported at module level, so
``mrv --help`` stays quick; the registry (and with it pandas and pint) loads inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mrv.errors import MRVError

methodologies_app = typer.Typer(no_args_is_help=True, help="Digitized methodologies: list them, show their declarations.")


def _out() -> Console:
    # Built per command so that the current stdout (and $COLUMNS) is used; emoji off as in mrv.cli.
    return Console(emoji=False, highlight=False)


def _fail(exc: BaseException) -> None:
    """One line on stderr (never wrapped), exit code 2, as ``mrv.cli`` reports an MRVError."""
    Console(stderr=True, emoji=False, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code=2)


def _num(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.10g}"
    return str(v)


_KEY_COLUMNS = frozenset({"symbol", "name", "quantity", "id", "#", "kind", "unit", "contract", "value", "version", "program"})


class _Rows:
    """A Rich table built after its rows are known, so symbol/id/value/unit columns get the width
    of their longest cell (never broken) and only the prose columns wrap."""

    def __init__(self, *columns: str, title: str | None = None) -> None:
        self.columns, self.title, self.rows = columns, title, []  # type: list[tuple[str, ...]]

    def add_row(self, *cells: str) -> None:
        self.rows.append(tuple(cells))

    def __bool__(self) -> bool:
        return bool(self.rows)

    def __rich__(self) -> Table:
        t = Table(title=self.title, title_justify="left", show_edge=False, title_style="bold")
        for i, c in enumerate(self.columns):
            if c in _KEY_COLUMNS:
                longest = max([len(c)] + [len(Text.from_markup(r[i]).plain) for r in self.rows])
                t.add_column(c, no_wrap=True, min_width=min(longest, 32), justify="right" if c == "value" else "left")
            else:
                t.add_column(c, overflow="fold")
        for r in self.rows:
            t.add_row(*r)
        return t


def _table(*columns: str, title: str | None = None) -> _Rows:
    return _Rows(*columns, title=title)


@methodologies_app.command("list")
def list_methodologies(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Registered methodologies: id, title, program, version."""
    from mrv.methodology.describe import summary
    from mrv.methodology.registry import all_methodologies

    try:
        rows = [summary(m) for m in all_methodologies()]
    except MRVError as exc:
        _fail(exc)
        return
    if json_out:
        print(json.dumps(rows, indent=1))
        return
    table = _table("id", "title", "program", "version")
    for r in rows:
        table.add_row(escape(r["id"]), escape(r["title"]), escape(r["program"]), escape(r["version"]))
    _out().print(table)


@methodologies_app.command("show")
def show_methodology(
    methodology_id: Annotated[str, typer.Argument(help="Methodology id, e.g. CDM:ACM0002:22.0.")],
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Everything a methodology declares: source, applicability, parameters, monitored data and
    their contracts, equations, outputs."""
    from mrv.methodology.describe import describe
    from mrv.methodology.registry import get

    try:
        doc = describe(get(methodology_id))
    except MRVError as exc:
        _fail(exc)
        return
    if json_out:
        print(json.dumps(doc, indent=1, ensure_ascii=False))
        return
    _print_description(doc, _out())


def _print_description(doc: dict[str, Any], out: Console) -> None:
    e = escape
    src = doc["source"]
    out.print(f"[bold]{e(doc['id'])}[/]  {e(doc['title'])}")
    out.print(f"  program  {e(doc['program'])}   code {e(doc['code'])}   version {e(doc['version'])}")
    out.print(f"  source   {e(src['document'])}")
    if src.get("url"):
        out.print(f"  url      {e(src['url'])}")
    if src.get("tools"):
        out.print(f"  tools    {e(', '.join(src['tools']))}")

    out.print()
    app = _table("#", "condition", "clause", title="Applicability")
    for n, a in enumerate(doc["applicability"], 1):
        app.add_row(str(n), e(a["condition"]), e(a["clause"] or "(not stated separately)"))
    out.print(app if doc["applicability"] else "[bold]Applicability[/]: none declared")

    out.print()
    params = _table("symbol", "description", "kind", "unit", "default / source", "allowed", title="Parameters")
    for p in doc["parameters"]:
        if p["status"] == "default":
            default = f"{_num(p['default'])} ({p['default_source'] or 'methodology default'})"
        else:
            default = p["status"]
        allowed = []
        if p["choices"]:
            allowed.append(" | ".join(p["choices"]))
        if p["minimum"] is not None:
            allowed.append(f">= {_num(p['minimum'])}")
        if p["maximum"] is not None:
            allowed.append(f"<= {_num(p['maximum'])}")
        params.add_row(e(p["symbol"]), e(p["description"]), p["kind"], e(p["unit"] or ""), e(default), e(", ".join(allowed)))
    out.print(params)

    out.print()
    mon = _table("name", "description", "source", "unit", "contract", title="Monitored data")
    contracts: dict[str, dict[str, Any]] = {}
    for s in doc["monitored"]:
        c = contracts.setdefault(s["contract"]["id"], s["contract"])
        contract = f"{c['id']} {c['version']}" if c["found"] else f"{c['id']} (NOT FOUND)"
        mon.add_row(e(s["name"]), e(s["description"]), s["source"], e(s["unit"]), e(contract))
    out.print(mon if doc["monitored"] else "[bold]Monitored data[/]: none declared")
    if [v["name"] for v in doc["monitored_values"]] != [s["name"] for s in doc["monitored"]]:
        out.print()
        vals = _table("name", "unit", "description", title="Monitored values (what aggregate returns and calculate reads)")
        for v in doc["monitored_values"]:
            vals.add_row(e(v["name"]), e(v["unit"]), e(v["description"]))
        out.print(vals)
    if doc["instrument_quantities"]:
        out.print("  instrument quantities: " + e(", ".join(f"{q} [{u}]" for q, u in doc["instrument_quantities"].items())))
    for c in contracts.values():
        if c["found"]:
            out.print(f"  contract [bold]{e(c['id'])}[/] {e(c['version'])}: {e(c['description'])}")
            rules = ", ".join(f"{r['id']} ({r['severity']})" for r in c["rules"])
            out.print(f"    rules: {e(rules)}")
        else:
            out.print(f"  contract [bold red]{e(c['id'])}[/]: {e(c['error'])}")

    out.print()
    eqs = _table("symbol", "expression", "unit", "clause", title="Equations")
    for q in [*doc["equations"], doc["rounding"]]:
        eqs.add_row(e(q["symbol"]), e(q["expression"]), e(q["unit"]), e(q["clause"]))
    out.print(eqs)

    out.print()
    outs = _table("symbol", "description", "unit", title="Outputs")
    for o in doc["outputs"]:
        outs.add_row(e(o["symbol"]), e(o["description"]), e(o["unit"]))
    out.print(outs if doc["outputs"] else "[bold]Outputs[/]: none declared")


def calculate(
    methodology_id: Annotated[str, typer.Argument(help="Methodology id, e.g. CDM:ACM0002:22.0.")],
    inputs: Annotated[Path, typer.Option("--inputs", "-i", help="JSON or YAML file: {parameters: {...}, monitored: {...}}.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the calculation result (with trace) as JSON.")] = False,
) -> None:
    """Run a calculator on parameter values and pre-aggregated monitored values; print the results
    and the full equation trace. For checking one number: no data-quality treatment is applied."""
    from mrv.methodology.inputs import calculate_from_inputs, read_inputs
    from mrv.methodology.registry import get

    try:
        m = get(methodology_id)
        result, monitored = calculate_from_inputs(m, read_inputs(inputs))
    except MRVError as exc:
        _fail(exc)
        return
    doc = result.to_dict()
    if json_out:
        print(json.dumps(doc, indent=1, ensure_ascii=False))
        return
    out, e = _out(), escape
    out.print(f"[bold]{e(m.id)}[/]  {e(m.info.title)}")
    out.print("[dim]Direct calculation on pre-aggregated values: no data-quality treatment applied.[/]")
    out.print()
    inp = _table("symbol", "value", "unit", "source", title="Inputs")
    for p in doc["parameters"]:
        unit = p["unit"] if m.parameter_spec(p["symbol"]).kind == "quantity" else ""
        inp.add_row(e(p["symbol"]), e(_num(p["value"])), e(unit), e(p["source"]))
    units = {v.name: v.unit for v in m.monitored_values()}
    for name, value in monitored.items():
        inp.add_row(e(name), _num(value), e(units[name]), "monitored (converted to the declared unit)")
    out.print(inp)
    out.print()
    res = _table("quantity", "value", "unit", title="Result")
    for sym, q in doc["quantities"].items():
        res.add_row(e(sym), _num(q["value"]), e(q["unit"]))
    res.add_row("[bold]issuable (rounded down)[/]", f"[bold]{doc['issuable_tCO2e']:,}[/]", "tCO2e")
    out.print(res)
    out.print()
    tr = _table("symbol", "value", "unit", "equation", "clause", title="Equation trace")
    for s in doc["trace"]:
        tr.add_row(e(s["symbol"]), e(_num(s["value"])), e(s["unit"]), e(s["equation"]), e(s["clause"]))
    out.print(tr)
