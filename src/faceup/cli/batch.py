"""Whole archives on Ray: batch, undo (the ray extra)."""

from typing import Annotated, Optional

import typer

from faceup import imageio, pipeline
from faceup.cli.common import (
    IncludeOutputs,
    MaxPixels,
    MinConfidence,
    Thorough,
    app,
    error_line,
    failed_line,
    out,
    print_json,
    printable,
    progress,
)
from faceup.errors import FaceupError


@app.command()
def batch(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="A folder tree of pictures, or a text file of "
                                          "paths (one per line); a folder may be s3://BUCKET/PREFIX (endpoint "
                                          "and credentials from the AWS variables and files).",
                                          show_default=False)],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Folder (or s3://BUCKET/PREFIX) that "
                      "mirrors the inputs. Default: SOURCE-upright beside the source.")] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Change the inputs themselves (atomically; the "
                        "originals are kept for `faceup undo`).")] = False,
    report_only: Annotated[bool, typer.Option("--report-only", help="Only the table: how each picture is "
                           "turned, nothing written.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only the table, with what would be written "
                       "where; nothing written.")] = False,
    tag_only: Annotated[bool, typer.Option("--tag-only", help="No new pixels: set the EXIF Orientation tag "
                        "of JPEGs and PNGs, and write an XMP sidecar (NAME.EXT.xmp) for other formats.")] = False,
    table: Annotated[Optional[str], typer.Option("--table", help="The results table (Parquet), also the "
                     "run's journal. Default: faceup-results.parquet in the output folder, else beside "
                     "the source.")] = None,
    address: Annotated[Optional[str], typer.Option("--address", envvar="RAY_ADDRESS", help="A Ray cluster "
                       "to run on (ray start --head elsewhere). Default: a local Ray started here.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show Ray's own log lines (by default they go to a "
                       "log file, named only if the run fails).")] = False,
    fmt: Annotated[Optional[str], typer.Option("--format", help="Output format of fixed pictures "
                   "(default: each input's).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Pictures per Ray batch (a row "
                          "part of the journal each).")] = 128,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    thorough: Thorough = False,
    min_confidence: MinConfidence = None,
    include_outputs: IncludeOutputs = False,
    max_pixels: MaxPixels = imageio.DEFAULT_MAX_PIXELS,
) -> None:
    """Fix (or report on) a whole archive on Ray Data, resumably: killed and started
    again with the same command, it does only what is not done yet. Needs the ray
    extra: pip install 'faceup[ray]' (from a checkout: pip install -e '.[ray]').

    When to use it: for a few thousand pictures on one machine `faceup fix DIR`
    is quicker (Ray takes about 8 s to start and stop); batch pays off for large
    archives, for a cluster (--address), when a run must survive being killed,
    and when a results table (Parquet) or `faceup undo` is wanted."""
    from faceup import batch as engine

    if sum([in_place, report_only, dry_run]) > 1 or (output is not None and (in_place or report_only)):
        error_line("give one of --output, --in-place, --report-only (or --dry-run)")
        raise typer.Exit(2)
    mode = "report" if report_only else "dry-run" if dry_run else "tag" if tag_only else "fix"
    try:
        options = pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels, format=fmt,
                                   thorough=thorough)
        plan = engine.prepare(source, mode, output, in_place, table, fmt, options, include_outputs)
        with progress(len(plan.paths), "batch", rate=True) as bar:
            task = bar.add_task("", total=len(plan.paths))
            summary = engine.run(plan, address=address, batch_size=batch_size, verbose=verbose,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
    except FaceupError as exc:
        error_line(str(exc))
        raise typer.Exit(2) from None
    if as_json:
        print_json({"table": summary.table, "inputs": summary.inputs, "done_before": summary.done_before,
                     "done_now": summary.done_now, "by_action": summary.by_action, "failed": len(summary.failed),
                     "seconds": round(summary.seconds, 2),
                     "start_seconds": None if summary.start_seconds is None else round(summary.start_seconds, 2),
                     "per_second_once_up": None if summary.per_second_once_up is None
                     else round(summary.per_second_once_up, 2),
                     "nodes": summary.nodes, "actors": summary.actors})
    else:
        rate = summary.done_now / summary.seconds if summary.seconds else 0.0
        once_up = ("" if summary.per_second_once_up is None else
                   f", {summary.per_second_once_up:.1f}/s once Ray was up after {summary.start_seconds:.1f} s")
        out.print(f"{summary.inputs} pictures: {summary.done_before} done before, {summary.done_now} now "
                  f"({rate:.1f}/s{once_up} on {summary.actors} actor(s), {summary.nodes} node(s)); "
                  + ", ".join(f"{k} {v}" for k, v in sorted(summary.by_action.items())))
        out.print(f"table: {printable(summary.table)}")
        for path, msg in summary.failed[:20]:
            failed_line(path, msg, indent="  ")
    raise typer.Exit(1 if summary.failed else 0)


@app.command()
def undo(
    table: Annotated[str, typer.Argument(metavar="TABLE", help="The results table of a `faceup batch` run "
                                         "(a path or s3://BUCKET/KEY).", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")] = False,
) -> None:
    """Restore what a `faceup batch` run changed: inputs replaced in place get their
    originals back, outputs and sidecars it wrote are removed. Files changed since
    the run are left alone and listed."""
    from faceup import batch as engine

    try:
        report = engine.undo(table)
    except FaceupError as exc:
        error_line(str(exc))
        raise typer.Exit(2) from None
    if as_json:
        print_json({"restored": report.restored, "removed": report.removed,
                     "skipped": [{"path": p, "why": w} for p, w in report.skipped]})
    else:
        out.print(f"{len(report.restored)} restored, {len(report.removed)} removed, {len(report.skipped)} left alone")
        for p, w in report.skipped:
            out.print(f"  {printable(p)}: {w}")
    raise typer.Exit(0)
