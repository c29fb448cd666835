"""The ``mrv`` command line (Typer + Rich).

Heavy imports (Prefect, Great Expectations, pandas) happen inside commands so ``mrv --help`` is quick.
"""

from __future__ import annotations

import json
import numbers
import os
import sys
import threading
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from mrv.errors import MRVError
from mrv.settings import MRVSettings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Digital MRV: sensor data to verified carbon-credit issuance.")
lineage_app = typer.Typer(no_args_is_help=True, help="Inspect what runs consumed and produced.")
app.add_typer(lineage_app, name="lineage")
keys_app = typer.Typer(no_args_is_help=True, help="Ed25519 did:key signing keys.")
app.add_typer(keys_app, name="keys")
report_app = typer.Typer(no_args_is_help=True, help="Signed monitoring reports and verification packages.")
app.add_typer(report_app, name="report")
package_app = typer.Typer(no_args_is_help=True, help="Verification packages (offline checks).")
app.add_typer(package_app, name="package")


def _mount_registry() -> None:
    from mrv.registry.cli import registry_app

    app.add_typer(registry_app, name="registry", help="Registry intake service: serve, tokens, review, audit.")


_mount_registry()


def _mount_methodologies() -> None:
    from mrv.methodology.cli import calculate, methodologies_app

    app.add_typer(methodologies_app, name="methodologies")
    app.command("calculate")(calculate)


_mount_methodologies()

# emoji=False: "did:key:z6Mk..." must not become "did🔑z6Mk...".
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

DataDir = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Workspace data directory (default ./.mrv, or $MRV_HOME).", show_default=False),
]


def _settings(data_dir: Path | None, **overrides: Any) -> MRVSettings:
    kwargs: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        kwargs["home"] = data_dir
    return MRVSettings(**kwargs)


def _fail(exc: BaseException) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
    raise typer.Exit(code=2)


def _quiet_prefect(settings: MRVSettings, *, verbose: bool) -> None:
    """Prefect state (its ephemeral SQLite DB) lives inside the workspace; telemetry is off (offline)."""
    os.environ.setdefault("PREFECT_HOME", str(settings.home.expanduser().resolve() / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Prefect's default 20 s for the ephemeral server to come up is too short on a loaded 2-core laptop.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")


def _steps_table(steps: list[Any], title: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("step")
    table.add_column("status")
    table.add_column("time", justify="right")
    style = {"completed": "green", "cached": "cyan", "running": "yellow", "failed": "red"}
    for s in steps:
        dur = ""
        if s.ended_at is not None:
            dur = f"{(s.ended_at - s.started_at).total_seconds():.1f}s"
        status = s.status.value if hasattr(s.status, "value") else str(s.status)
        table.add_row(s.name, f"[{style.get(status, 'white')}]{status}[/]", dur)
    return table


def run_with_progress(settings: MRVSettings, project: Path, *, verbose: bool = False) -> dict[str, Any]:
    """Run the monitoring flow in a worker thread and show its steps live from the lineage store."""
    _quiet_prefect(settings, verbose=verbose)
    from flows.monitoring import run_project_flow
    from mrv.pipeline import open_workspace, start_run

    run_id, _ = start_run(settings, project)
    _, _, lineage = open_workspace(settings)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["summary"] = run_project_flow(settings, run_id=run_id)
        except BaseException as exc:  # reported below, in the main thread
            outcome["error"] = exc

    t = threading.Thread(target=work, name="mrv-flow", daemon=True)
    t0 = time.monotonic()
    t.start()
    title = f"run {run_id}"
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while t.is_alive():
            live.update(_steps_table(lineage.list_steps(run_id), f"{title}  ({time.monotonic() - t0:.0f}s)"))
            t.join(timeout=0.25)
        live.update(_steps_table(lineage.list_steps(run_id), f"{title}  ({time.monotonic() - t0:.0f}s)"))
    console.print()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["summary"]


def _print_summary(summary: dict[str, Any]) -> None:
    q = summary["quantities"]
    table = Table(title="Result", title_justify="left", show_edge=False)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for sym, v in q.items():
        table.add_row(sym, f"{v['value']:,.3f}", v["unit"])
    table.add_row("[bold]issuable (rounded down)[/]", f"[bold]{summary['issuable_tCO2e']:,}[/]", "tCO2e")
    console.print(table)
    contract = summary.get("contract", {})
    console.print(f"\n[bold]Data contract[/] {contract.get('contract_id', '')} {contract.get('contract_version', '')}")
    for line in _contract_lines(contract):
        console.print(f"  {line}", highlight=False)
    treatments = summary.get("treatments") or []
    if treatments:
        console.print("\n[bold]Conservative treatments applied[/] (full detail and clauses in calculation.json)")
        quiet = [t for t in treatments if t.get("kind") == "invoice_cross_check" and not t.get("flagged")]
        for t in treatments:
            if t in quiet:
                continue
            where = t.get("meter_id") or (f"{t['period_start'][:10]}..{t['period_end'][:10]}" if t.get("period_start") else "")
            flag = " [red]FLAGGED[/]" if t.get("flagged") else ""
            console.print(f"  - {t.get('kind', '?'):<24} {where:<24} {_treatment_quantity(t):>18}  {t.get('detail', '')}{flag}", highlight=False)
        if quiet:  # invoice cross-checks of an energy methodology: their effect is in kWh
            kwh = sum(t.get("effect_on_net_kWh") or 0.0 for t in quiet)
            console.print(
                f"  - {'invoice_cross_check':<24} {f'{len(quiet)} periods':<24} {f'{kwh:,.1f} kWh':>18}  "
                "within the metering tolerance; the lower of metered and invoiced used",
                highlight=False,
            )
    ws = Path(summary["workspace"])
    console.print(
        f"\nRun [bold]{summary['run_id']}[/]\n"
        f"  outputs   {ws / 'runs' / summary['run_id']}\n"
        f"  artifacts {ws / 'artifacts'}\n"
        f"  lineage   {ws / 'lineage.db'}  (mrv lineage show {summary['run_id']})\n"
        f"  events    {ws / 'openlineage' / 'events.jsonl'}",
        highlight=False,
    )


# The quantity a treatment carries and its unit, first present key wins. Energy methodologies give
# the effect on net energy (kWh); others a count with its unit (ACM0001: count + count_unit) or
# what was set aside (VM0047: plots, rows). A treatment with none of these shows no quantity.
_TREATMENT_QUANTITIES: tuple[tuple[str, str | None], ...] = (
    ("effect_on_net_kWh", "kWh"), ("kWh_adjusted", "kWh"), ("kWh_excluded", "kWh"),
    ("count", None),  # unit in count_unit
    ("rows", "rows"), ("intervals", "intervals"), ("devices", "devices"), ("plots", "plots"), ("plot_ids", "plots"),
)


def _treatment_quantity(t: dict[str, Any]) -> str:
    """The quantity of a treatment with the unit it carries (``-11,548.7 kWh``, ``36 plots``), or ""."""
    for key, unit in _TREATMENT_QUANTITIES:
        v = t.get(key)
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, (list, tuple)):
            v = len(v)
        if key == "count":
            unit = t.get("count_unit") or ""
        if not isinstance(v, numbers.Real):
            continue
        text = f"{int(v):,}" if isinstance(v, numbers.Integral) else f"{float(v):,.1f}"
        return f"{text} {unit}".rstrip()
    return ""


def _contract_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for rule in summary.get("rules", []):
        status = "pass" if rule.get("success") else ("QUARANTINED" if rule.get("quarantined_count") else rule.get("severity", "fail").upper())
        extra = f", {rule['quarantined_count']} rows quarantined" if rule.get("quarantined_count") else (f", {rule['unexpected_count']} rows flagged" if rule.get("unexpected_count") else "")
        lines.append(f"{rule['rule_id']:<24} {status}{extra}")
    for meter, hours in (summary.get("gap_hours_per_meter") or {}).items():
        if hours:
            lines.append(f"gap hours {meter}: {hours:g} h")
    for meter, kwh in (summary.get("quarantined_kwh_per_meter") or {}).items():
        if kwh:
            lines.append(f"quarantined energy {meter}: {kwh:,.1f} kWh")
    return lines


@app.command()
def run(
    project: Annotated[Path, typer.Argument(help="Project YAML file.", exists=False)],
    data_dir: DataDir = None,
    engine: Annotated[Optional[str], typer.Option(help="Contract evaluator: auto, gx or native.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect logs.")] = False,
) -> None:
    """Run the monitoring flow for a project file: ingest, validate, calculate."""
    try:
        settings = _settings(data_dir, contract_engine=engine)
        from mrv.project import load_project

        load_project(project)  # fail fast with a readable error before Prefect starts
        summary = run_with_progress(settings, project, verbose=verbose)
    except MRVError as exc:
        _fail(exc)
        return
    if json_out:
        print(json.dumps(summary, indent=1, default=str))
    else:
        _print_summary(summary)


class SampleProject(str, Enum):
    wind = "wind"
    landfill = "landfill"
    cooking = "cooking"
    arr = "arr"


def generate_sample(sample: SampleProject, target: Path, *, seed: int) -> Path:
    """Write the chosen sample project under ``target``; returns its project file."""
    if sample is SampleProject.landfill:
        from mrv.sample.landfill import generate_landfill_project

        return generate_landfill_project(target, seed=seed)
    if sample is SampleProject.cooking:
        from mrv.sample.cooking import generate_cooking_project

        return generate_cooking_project(target, seed=seed)
    if sample is SampleProject.arr:
        from mrv.sample.arr import generate_arr_project

        return generate_arr_project(target, seed=seed)
    from mrv.sample import generate_demo_project

    return generate_demo_project(target, seed=seed)


@app.command()
def demo(
    data_dir: DataDir = None,
    project_dir: Annotated[Optional[Path], typer.Option(help="Where to write the sample project (default <data-dir>/demo-project).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample-data generator.")] = 7,
    sample: Annotated[SampleProject, typer.Option("--sample", help="Which bundled sample project to generate and run.")] = SampleProject.wind,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Generate a bundled sample project (with realistic faults) and run it end to end.

    wind: 50 MW wind farm, CDM ACM0002; landfill: landfill-gas flare with a year of minute data,
    CDM ACM0001 + TOOL06; cooking: 1,500 metered electric cookers, Gold Standard MECD; arr:
    Atlantic Forest restoration from synthetic satellite scenes and a field inventory, VCS VM0047.
    """
    settings = _settings(data_dir)
    name = "demo-project" if sample is SampleProject.wind else f"demo-{sample.value}"
    target = project_dir or (settings.home.expanduser().resolve() / name)
    project = generate_sample(sample, target, seed=seed)
    hint = " (see README.txt there for the injected faults)" if (project.parent / "README.txt").is_file() else " (its header comments describe the injected faults)"
    console.print(f"Sample project written to [bold]{project}[/]{hint}\n", highlight=False)
    try:
        summary = run_with_progress(settings, project, verbose=verbose)
        _print_summary(summary)
        package, dev, vvb = _demo_verification_chain(settings, summary["run_id"])
        _demo_registry_chain(settings, summary["run_id"], package, dev_did=dev.did, vvb_did=vvb.did)
    except MRVError as exc:
        _fail(exc)
        return


def _demo_verification_chain(settings: MRVSettings, run_id: str) -> tuple[Path, Any, Any]:
    """Developer signs; the VVB verifies, replays and attests; the package verifies with both signatures."""
    from mrv.attest import Opinion, attest
    from mrv.package import verify_package
    from mrv.pipeline import open_workspace
    from mrv.replay import replay_package
    from mrv.report.build import build_report, record_outputs
    from mrv.signing import KeyRole, generate_key, verify_credential, write_key

    ws, store, lineage = open_workspace(settings)
    keys_dir = ws.root / "keys"  # inside the workspace (git-ignored); demo keys only
    console.rule("[bold]Developer signs the monitoring report")
    dev = generate_key(role=KeyRole.developer)
    write_key(dev, out_dir=keys_dir)
    outputs = build_report(workspace=ws, store=store, lineage=lineage, run_id=run_id, key=dev)
    _print_report(outputs)

    console.rule("[bold]VVB verifies and replays the package offline")
    vvb = generate_key(role=KeyRole.vvb)
    write_key(vvb, out_dir=keys_dir)
    check = verify_package(outputs.package.path, verify_signature=verify_credential, required_signatures=["report"])
    _verification_table(check)
    if not check.ok:
        raise MRVError(f"package does not verify: {check.first_failure}")
    replay = replay_package(outputs.package.path)
    _print_replay(replay)

    console.rule("[bold]VVB attests")
    opinion = Opinion.positive if replay.ok else Opinion.qualified
    statement, info = attest(outputs.package.path, key=vvb, opinion=opinion, findings=[], replay=replay, materiality=replay.materiality)
    final = verify_package(info.path, verify_signature=verify_credential, required_signatures=["report", "statement"])
    if not final.ok:
        raise MRVError(f"package does not verify after attestation: {final.first_failure}")
    statement_path = ws.run_dir(run_id) / "statement.json"
    statement_path.write_text(json.dumps(statement, indent=1, sort_keys=True) + "\n")
    record_outputs(lineage, store, run_id=run_id, step="attest", parameters={"signer": vvb.did, "opinion": opinion.value},
                   files={"statement": statement_path, "attested_package": info.path})
    console.print(
        f"Statement ({opinion.value}) by {statement['issuer']}\n[bold green]PASS[/] {info.path}: signed by developer and VVB, "
        f"merkle root {final.merkle_root}\nKeys for this demo: {keys_dir} (private files 0600; never commit them)",
        highlight=False,
    )
    return info.path, dev, vvb


def _demo_registry_chain(settings: MRVSettings, run_id: str, package: Path, *, dev_did: str, vvb_did: str) -> None:
    """Start a local intake service, submit the verified package, approve it, and list the units."""
    import httpx
    import uvicorn

    from mrv.registry.auth import create_token
    from mrv.registry.client import Outbox, submit
    from mrv.registry.db import RegistryStore
    from mrv.registry.service import create_app

    console.rule("[bold]Registry: submit, checks, approval, issuance")
    home = settings.home.expanduser().resolve()
    db_url = f"sqlite:///{home / 'registry' / f'demo-{run_id}.db'}"  # a fresh demo registry per run
    (home / "registry").mkdir(parents=True, exist_ok=True)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(create_app(db_url=db_url, base_url=url), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="mrv-registry", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise MRVError("the demo registry service did not start")
        time.sleep(0.05)
    try:
        store = RegistryStore(db_url)
        officer = create_token(store, role="officer", subject="demo registry officer")
        developer = create_token(store, role="developer", subject=dev_did)
        h = {"Authorization": f"Bearer {officer}"}
        with httpx.Client(base_url=url, timeout=120) as client:
            for path, body in (
                ("/v1/admin/vvbs", {"did": vvb_did}),
                ("/v1/admin/developers", {"project_id": _package_project(package), "did": dev_did}),
                ("/v1/admin/methodologies", {"id": _package_subject(package)["methodology"]["id"]}),
            ):
                client.post(path, json=body, headers=h).raise_for_status()
            entry = submit(package, registry_url=url, token=developer, outbox=Outbox(home / "outbox.db"))
            _print_request(entry.response or {})
            request_id = (entry.response or {}).get("id")
            if (entry.response or {}).get("status") != "checks_passed":
                raise MRVError(f"the demo request did not pass the intake checks: {entry.response}")
            approved = client.post(f"/v1/requests/{request_id}/approve", headers=h)
            approved.raise_for_status()
            units = client.get("/v1/units", params={"limit": 10}).json()["items"]
        for u in units:
            console.print(
                f"[bold green]issued[/] {u['unitCount']:,} tCO2e  vintage {u['vintageYear']}  serials {u['unitBlockStart']} .. {u['unitBlockEnd']}  "
                f"status {u['unitStatus']}",
                highlight=False,
            )
        console.print(f"Registry (demo, local): {url} while running; database {db_url}", highlight=False)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _package_subject(package: Path) -> dict[str, Any]:
    import zipfile

    with zipfile.ZipFile(package) as zf:
        return json.loads(zf.read("signatures/report.json"))["credentialSubject"]


def _package_project(package: Path) -> str:
    return _package_subject(package)["project"]["id"]


@keys_app.command("new")
def keys_new(
    role: Annotated[str, typer.Option(help="developer, vvb or registry.")],
    out: Annotated[Path, typer.Option(help="Directory for the key files.")],
) -> None:
    """Create an Ed25519 key pair as a did:key. The private key file gets mode 0600 and is never printed."""
    from mrv.signing import KeyRole, generate_key, write_key

    try:
        key = generate_key(role=KeyRole(role))
        priv, pub = write_key(key, out_dir=out)
    except ValueError:
        _fail(MRVError(f"unknown role {role!r}: use developer, vvb or registry"))
        return
    except MRVError as exc:
        _fail(exc)
        return
    console.print(f"{key.did}\n  private key {priv} (0600, keep it secret)\n  public key  {pub}", highlight=False)


@report_app.command("build")
def report_build(
    run_id: Annotated[str, typer.Argument(help="A completed run.")],
    key: Annotated[Path, typer.Option(help="The developer's private key file.")],
    data_dir: DataDir = None,
    out: Annotated[Optional[Path], typer.Option(help="Output directory (default runs/<run_id>/).")] = None,
) -> None:
    """Sign the monitoring report of a run and build its HTML/PDF twin and verification package."""
    from mrv.pipeline import open_workspace
    from mrv.report.build import build_report
    from mrv.signing import load_key

    try:
        ws, store, lineage = open_workspace(_settings(data_dir))
        outputs = build_report(workspace=ws, store=store, lineage=lineage, run_id=run_id, key=load_key(key), out_dir=out)
    except MRVError as exc:
        _fail(exc)
        return
    _print_report(outputs)


def _print_report(outputs: Any) -> None:
    console.print(
        f"[bold]Signed report[/] {outputs.report_path}\n  issuer   {outputs.report['issuer']}\n"
        f"  html/pdf {outputs.html_path}  {outputs.pdf_path}\n"
        f"[bold]Package[/] {outputs.package.path}\n  merkle root {outputs.package.merkle_root}  ({outputs.package.artifact_count} artifacts)",
        highlight=False,
    )


def _verification_table(result: Any) -> None:
    failed = [c for c in result.checks if not c.ok]
    counts: dict[str, int] = {}
    for c in result.checks:
        counts[str(c.kind)] = counts.get(str(c.kind), 0) + 1
    console.print("checks: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), highlight=False)
    for c in failed[:20]:
        console.print(f"  [red]FAIL[/] {c.name}: {c.detail}", highlight=False)


@package_app.command("verify")
def package_verify(package: Annotated[Path, typer.Argument(help="Verification package (.zip).")]) -> None:
    """Offline: every artifact digest, the manifest's Merkle root and every signature."""
    from mrv.package import verify_package
    from mrv.signing import verify_credential

    result = verify_package(package, verify_signature=verify_credential, required_signatures=["report"])
    _verification_table(result)
    if not result.ok:
        err_console.print(f"[bold red]FAILED[/] {result.first_failure}", highlight=False)
        raise typer.Exit(code=1)
    console.print(f"[bold green]PASS[/] {package}  merkle root {result.merkle_root}  signed: {', '.join(result.signed_documents)}", highlight=False)


@app.command("verify")
def verify_cmd(
    package: Annotated[Path, typer.Argument(help="Verification package (.zip).")],
    replay: Annotated[bool, typer.Option("--replay", help="Recompute from the raw inputs and compare.")] = False,
    materiality: Annotated[float, typer.Option(help="Materiality threshold as a fraction of the issuable quantity.")] = 0.01,
    use_installed: Annotated[bool, typer.Option("--use-installed", help="Replay with the installed code even if versions differ.")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """VVB: verify the package and, with --replay, recompute the result step by step."""
    package_verify(package)
    if not replay:
        return
    from mrv.replay import replay_package

    try:
        result = replay_package(package, materiality=materiality, use_installed=use_installed)
    except MRVError as exc:
        _fail(exc)
        return
    if json_out:
        print(json.dumps(result.to_dict(), indent=1, default=str))
    else:
        _print_replay(result)
    if not result.ok:
        raise typer.Exit(code=1)


def _print_replay(result: Any) -> None:
    table = Table(title="Replay", title_justify="left", show_edge=False)
    for col in ("step", "recorded", "replayed", ""):
        table.add_column(col, overflow="fold")
    for s in result.steps:
        table.add_row(s.name, s.recorded[:19] + "…", s.replayed[:19] + "…", "[green]same[/]" if s.matched else "[red]differs[/]")
    console.print(table)
    for d in result.trace_differences[:30]:
        console.print(f"  {d.symbol}: recorded {d.recorded} replayed {d.replayed} {d.unit}", highlight=False)
    for n in result.notes:
        console.print(f"  note: {n}", highlight=False)
    verdict = "[green]identical[/]" if result.identical else (
        f"[yellow]within materiality[/] ({result.relative_difference:.4%} ≤ {result.materiality:.2%})" if result.ok
        else f"[red]differs beyond materiality[/] ({result.relative_difference:.4%} > {result.materiality:.2%})")
    console.print(f"issuable recorded {result.issuable_recorded:,} tCO2e, replayed {result.issuable_replayed:,} tCO2e: {verdict}")


@app.command("attest")
def attest_cmd(
    package: Annotated[Path, typer.Argument(help="Verification package (.zip).")],
    key: Annotated[Path, typer.Option(help="The VVB's private key file.")],
    opinion: Annotated[str, typer.Option(help="positive, qualified or adverse.")],
    finding: Annotated[Optional[list[str]], typer.Option("--finding", help="A finding (repeatable).")] = None,
    materiality: Annotated[float, typer.Option(help="Materiality threshold (fraction).")] = 0.01,
    no_replay: Annotated[bool, typer.Option("--no-replay", help="Attest without replaying (recorded in the statement).")] = False,
) -> None:
    """VVB: sign a verification statement bound to the report's digest and add it to the package."""
    from mrv.attest import Opinion, attest
    from mrv.replay import replay_package
    from mrv.signing import load_key

    try:
        op = Opinion(opinion)
    except ValueError:
        _fail(MRVError(f"unknown opinion {opinion!r}: use positive, qualified or adverse"))
        return
    try:
        result = None if no_replay else replay_package(package, materiality=materiality)
        vc, info = attest(package, key=load_key(key), opinion=op, findings=finding or [], replay=result, materiality=materiality)
    except MRVError as exc:
        _fail(exc)
        return
    console.print(f"[bold]Statement[/] ({op.value}) signed by {vc['issuer']} added to {info.path}", highlight=False)


@app.command("submit")
def submit_cmd(
    package: Annotated[Optional[Path], typer.Argument(help="Verification package (.zip) with the VVB statement.")] = None,
    registry: Annotated[str, typer.Option(help="Registry base URL.", envvar="MRV_REGISTRY_URL")] = "http://127.0.0.1:8765",
    token: Annotated[Optional[str], typer.Option(help="API token (prefer $MRV_REGISTRY_TOKEN).", envvar="MRV_REGISTRY_TOKEN", show_default=False)] = None,
    label: Annotated[Optional[list[str]], typer.Option("--label", help="Label to request (repeatable).")] = None,
    quantity: Annotated[Optional[int], typer.Option(help="tCO2e to request (default: the verified issuable quantity).")] = None,
    status: Annotated[Optional[str], typer.Option("--status", help="Show the status of a submitted request id.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Post a verified issuance request (outbox + retries, never double-submits), or show its status."""
    from mrv.registry.client import Outbox, RegistryClientError, request_status, submit

    if not token:
        _fail(MRVError("no API token: pass --token or set MRV_REGISTRY_TOKEN"))
        return
    try:
        if status:
            _print_request(request_status(registry_url=registry, token=token, request_id=status))
            return
        if package is None:
            _fail(MRVError("give a package to submit, or --status ID"))
            return
        settings = _settings(data_dir)
        outbox = Outbox(settings.home.expanduser().resolve() / "outbox.db")
        entry = submit(
            package, registry_url=registry, token=token, outbox=outbox, labels=label or [], quantity=quantity,
            on_attempt=lambda n, err: err_console.print(f"attempt {n} failed ({err}); retrying", highlight=False),
        )
    except RegistryClientError as exc:
        _fail(exc)
        return
    except MRVError as exc:
        _fail(exc)
        return
    _print_request(entry.response or {})


def _print_request(req: dict[str, Any]) -> None:
    console.print(f"[bold]Request {req.get('id')}[/]  status [bold]{req.get('status')}[/]  project {req.get('project_id')}", highlight=False)
    for c in req.get("checks") or []:
        mark = "[green]pass[/]" if c.get("passed") else "[red]FAIL[/]"
        console.print(f"  {mark} {c.get('name')}: {c.get('reason')}", highlight=False)


@lineage_app.command("show")
def lineage_show(
    run_id: Annotated[str, typer.Argument(help="Run id (see `mrv lineage runs`).")],
    data_dir: DataDir = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every artifact of a run: role, sha256, size, producing step, code version, parameters."""
    from mrv.pipeline import open_workspace

    try:
        _, _, lineage = open_workspace(_settings(data_dir))
        run_info = lineage.get_run(run_id)
        rows = lineage.run_artifacts(run_id)
    except MRVError as exc:
        _fail(exc)
        return
    if json_out:
        print(json.dumps({"run": _asdict(run_info), "artifacts": [_asdict(r) for r in rows]}, indent=1, default=str))
        return
    console.print(f"[bold]Run {run_info.id}[/]  project {run_info.project_id}  methodology {run_info.methodology_id}  status {_val(run_info.status)}", highlight=False)
    table = Table(show_edge=False)
    for col in ("step", "dir", "role", "sha256", "size", "code"):
        table.add_column(col, justify="right" if col == "size" else "left", overflow="fold")
    for r in rows:
        table.add_row(r.step_name, r.direction, r.role, r.digest, f"{r.size:,}", r.code_version or "")
    console.print(table)
    console.print("Step parameters: mrv lineage show --json", style="dim")


@lineage_app.command("export")
def lineage_export(
    run_id: Annotated[str, typer.Argument(help="Run id (see `mrv lineage runs`).")],
    role: Annotated[str, typer.Argument(help="Artifact role, e.g. validated, quarantine, readings/EXP-1.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .parquet or .csv.")],
    data_dir: DataDir = None,
) -> None:
    """Write the rows behind a tabular artifact of a run as Parquet or CSV.

    Readings and validated rows of meters are stored as derivations and row selections (views
    over the raw files, see docs/architecture-notes.md); this materialises them for review.
    """
    from mrv.frames import FramePieces
    from mrv.pipeline import open_workspace, read_validated

    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        _fail(MRVError(f"{out}: use a .parquet or .csv file name"))
        return
    try:
        _, store, lineage = open_workspace(_settings(data_dir))
        rows = [r for r in lineage.run_artifacts(run_id) if r.role == role and r.direction == "output"]
        if not rows:
            roles = sorted({r.role for r in lineage.run_artifacts(run_id) if r.direction == "output"})
            raise MRVError(f"run {run_id} has no output artifact with role {role!r} (roles: {', '.join(roles)})")
    except MRVError as exc:
        _fail(exc)
        return
    try:
        frame = read_validated(store, rows[-1].digest)
    except (MRVError, ValueError, OSError) as exc:
        _fail(MRVError(f"{role} ({rows[-1].digest}) is not a tabular artifact: {exc}"))
        return
    if isinstance(frame, FramePieces):
        frame = frame.concat()
    tmp = out.with_name(out.name + ".part")
    if suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    tmp.replace(out)  # nothing half-written under the requested name
    console.print(f"{len(frame):,} rows of {role} ({rows[-1].digest}) written to {out}", highlight=False)


@lineage_app.command("runs")
def lineage_runs(data_dir: DataDir = None, project: Annotated[Optional[str], typer.Option(help="Filter by project id.")] = None) -> None:
    """List runs, newest first."""
    from mrv.pipeline import open_workspace

    _, _, lineage = open_workspace(_settings(data_dir))
    table = Table(show_edge=False)
    for col in ("run", "project", "methodology", "status", "started"):
        table.add_column(col)
    for r in lineage.list_runs(project_id=project):
        table.add_row(r.id, r.project_id, r.methodology_id, _val(r.status), str(r.started_at))
    console.print(table)


def _val(x: Any) -> str:
    return x.value if hasattr(x, "value") else str(x)


def _asdict(obj: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return {k: _val(v) if hasattr(v, "value") else v for k, v in dataclasses.asdict(obj).items()}
    return dict(obj)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
