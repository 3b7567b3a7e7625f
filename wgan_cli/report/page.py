"""What the report shows besides figures and tables: an animated GIF of each image run's sample grids over
time, and index.html, the whole report on one page (images inlined as data: URIs; no server, no external
assets)."""

from __future__ import annotations

import base64
import contextlib
import html
import io
import re
import time
from pathlib import Path

from wgan_cli.report.runs import Run
from wgan_cli.report.tables import fmt_num

SAMPLE_RE = re.compile(r"^iter-(\d+)\.(png|txt)$")
MAX_GIF_FRAMES = 50


def sample_files(run: Run, suffix: str = ".png") -> list[tuple[int, Path]]:
    """(iteration, file) of the run's sample grids (.png) or text samples (.txt), oldest first: samples/iter-*
    and any files that `artifact` rows of kind samples/text name."""
    found: dict[Path, int] = {}
    for row in run.event_rows("artifact"):
        if row.get("kind") not in ("samples", "text"):   # figures (loss curves, value surfaces) are not samples
            continue
        p = artifact_path(run, str(row.get("path", "")))
        if p is not None and p.suffix == suffix:
            found[p.resolve()] = int(row.get("step", 0))
    folder = run.path / "samples"
    if folder.is_dir():
        for p in folder.iterdir():
            m = SAMPLE_RE.match(p.name)
            if m and p.suffix == suffix and p.is_file():
                found.setdefault(p.resolve(), int(m.group(1)))
    return sorted(((step, p) for p, step in found.items()), key=lambda sp: (sp[0], str(sp[1])))


def artifact_path(run: Run, logged: str) -> Path | None:
    """The file an artifact row names. Rows hold the path as the training command wrote it: absolute, or
    relative to where it ran (starting with its --out, recorded in options.json), which the report may not share."""
    p = Path(logged)
    out = str(run.options.get("run", {}).get("out", "")).rstrip("/")
    candidates = [p] if p.is_absolute() else [run.path / p, p]
    if out and not p.is_absolute() and logged.startswith(out + "/"):
        candidates.insert(0, run.path / logged[len(out) + 1:])
    return next((c for c in candidates if c.is_file()), None)


def samples_gif(files: list[tuple[int, Path]], frame_ms: int = 300) -> bytes | None:
    """An animated GIF of sample grids, each captioned with its iteration; at most MAX_GIF_FRAMES frames,
    evenly spaced, always the first and the last. Files that cannot be read (one being written, one damaged, one
    over Pillow's pixel limit) are skipped."""
    from PIL import Image, ImageDraw

    if len(files) > MAX_GIF_FRAMES:
        idx = sorted({round(i * (len(files) - 1) / (MAX_GIF_FRAMES - 1)) for i in range(MAX_GIF_FRAMES)})
        files = [files[i] for i in idx]
    frames, size = [], None
    for step, path in files:
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError):   # the last: over Pillow's pixel limit
            continue
        size = size or im.size
        if im.size != size:   # GIF frames share one size
            im = im.resize(size)
        frame = Image.new("RGB", (im.width, im.height + 14), "white")   # a caption strip above the grid
        frame.paste(im, (0, 14))
        ImageDraw.Draw(frame).text((3, 1), f"iteration {step}", fill="black")
        frames.append(frame)
    if not frames:
        return None
    buf = io.BytesIO()
    durations = [frame_ms] * (len(frames) - 1) + [max(frame_ms, 1500)]   # linger on the newest grid
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return buf.getvalue()



# ---- index.html -----------------------------------------------------------------------------------------

# Readable at any width: tables scroll sideways inside their own box (never the page), figures shrink to fit.
CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h3{font-size:1em;margin:1.2em 0 .3em}h3 small{font-weight:normal;color:#666}
.scroll{overflow-x:auto;max-width:100%;margin:.6em 0 1em}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0;box-sizing:border-box}
.grid{display:flex;flex-wrap:wrap;gap:0 1.5em}.grid>*{margin:0;min-width:0;max-width:100%}
figcaption{font-size:13px;overflow-wrap:anywhere}p{overflow-wrap:anywhere}pre{background:#f7f7f7;padding:.6em;
font-size:12px;overflow-x:auto}code{font-size:12px}"""
# the metric a summary row shows beside the run (the first of these that the run logged): the paper's scores
# first, then the toy's and the text's
MAIN_METRICS = ("is", "fid", "kid", "w1", "js4", "js1", "val_w_dist")


def _img(data: bytes, mime: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}">'


def _table(head: list[str], body: list[list]) -> str:
    def cell(v):
        cls = ' class="n"' if isinstance(v, (int, float)) else ""
        return f"<td{cls}>{html.escape(fmt_num(v))}</td>"

    return ('<div class="scroll"><table><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in body) + "</table></div>")


def main_metric(row: dict) -> str | None:
    """The metric a summary row leads with: the first of MAIN_METRICS the run logged, else its first metric."""
    return next((m for m in MAIN_METRICS if m in row["metrics"]), next(iter(row["metrics"]), None))


def index_html(runs, labs, rows, t2, written: dict, metric_files: dict, gifs: dict,
               refresh: float | None = None) -> str:
    """The page: runs, summary, Table 2, figures, sample GIFs, text samples and toy value surfaces.
    `written` maps the report's file names to their bytes (figures are inlined from there); with `refresh`
    (seconds: `--watch`, while a run is going) the page reloads itself that often."""
    reload = (f'<meta http-equiv="refresh" content="{max(1, round(refresh))}">' if refresh is not None else "")
    parts = ["<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
             f"{reload}<title>wgan report</title><style>{CSS}</style></head><body>", "<h1>wgan report</h1>",
             f"<p>{len(runs)} runs; written {html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))}. Minutes count "
             "active time (time stopped between resumed segments is left out); training minutes and the "
             "wall-clock axes also leave out checkpoints, evaluations and sample grids.</p>",
             *([f"<p><b>Live:</b> runs are still training; this page is rewritten as they log and reloads "
                f"itself every {max(1, round(refresh))} s.</p>"] if refresh is not None else []),
             "<h2>Runs</h2>",
             _table(["label", "folder", "command", "segments"],
                    [[lab, str(r.path), r.command, r.segments] for r, lab in zip(runs, labs)])]
    # the key columns first; every metric's last and best below, one small table per metric
    head = ["run", "label", "method", "iterations", "minutes", "main metric", "last", "best", "architecture",
            "dataset", "training minutes", "status"]
    body = []
    for r in rows:
        main = main_metric(r)
        value = r["metrics"].get(main, {})
        its = r["iterations"] if r["status"] == "finished" else f"{r['iterations']} / {r['target_iterations']}"
        body.append([r["run"], r["label"], r["method"], its, round(r["minutes"], 2), main or "",
                     value.get("last", ""), value.get("best", ""), r["architecture"], r["dataset"],
                     round(r["training_minutes"], 2), r["status"]])
    parts += ["<h2>Summary</h2>", _table(head, body)]
    metrics = list(dict.fromkeys(m for r in rows for m in r["metrics"]))
    if metrics:
        parts.append('<div class="grid">')
    for m in metrics:
        logged = [r for r in rows if m in r["metrics"]]
        better = logged[0]["metrics"][m]["better"]
        parts += [f"<section><h3>{html.escape(m)} <small>({better} is better)</small></h3>",
                  _table(["run", "last", "at iteration", "best", "at iteration"],
                         [[r["run"], v["last"], v["last_step"], v["best"], v["best_step"]]
                          for r in logged for v in [r["metrics"][m]]]), "</section>"]
    if metrics:
        parts.append("</div>")
    stats = list(dict.fromkeys(s for r in rows for s in r["stats"]))
    if stats:
        parts += ["<p>Training statistics, last logged value:</p>",
                  _table(["run", *stats], [[r["run"], *(r["stats"][s]["last"] if s in r["stats"] else ""
                                                        for s in stats)] for r in rows])]
    if t2 is not None:
        word = "above" if t2["higher_is_better"] else "below"
        c = t2["appendix_c"]
        parts += ["<h2>Table 2</h2>",
                  f"<p>Success = final {html.escape(t2['metric'])} {word} the threshold; {t2['architectures']} "
                  "architectures trained with both GAN and WGAN-GP.</p>",
                  _table(["threshold", "only GAN", "only WGAN-GP", "both", "neither"],
                         [[r["threshold"], r["only_gan"], r["only_wgan_gp"], r["both"], r["neither"]]
                          for r in t2["rows"]])]
        if c["architectures"]:
            parts.append(f"<p>Appendix C: gp ended better than lp on {c['gp_better']} of {c['architectures']} "
                         f"architectures (lp better on {c['lp_better']}, ties {c['ties']}).</p>")
        if t2["missing"]:
            parts.append(f"<p>Counted as failures (no finite final {html.escape(t2['metric'])}: diverged, or "
                         f"still running): {html.escape(', '.join(t2['missing']))}.</p>")
    parts += ["<h2>Training statistics</h2>", _img(written["curves-iterations.png"], "image/png", "iterations"),
              _img(written["curves-seconds.png"], "image/png", "wall-clock")]
    if metric_files:
        parts.append("<h2>Evaluation metrics</h2>")
        parts += [_img(written[f], "image/png", m) for m, f in metric_files.items()]
    if "train-vs-validation.png" in written:
        parts += ["<h2>Training vs validation (Section 5.6)</h2>",
                  _img(written["train-vs-validation.png"], "image/png", "training vs validation")]
    if gifs:
        parts.append("<h2>Samples over training</h2><div class=\"grid\">")
        parts += [f"<figure>{_img(written[f], 'image/gif', lab)}<figcaption>{html.escape(lab)}</figcaption>"
                  "</figure>" for lab, f in gifs.items()]
        parts.append("</div>")
    texts = []
    for run, lab in zip(runs, labs):
        files = sample_files(run, ".txt")
        if files:
            step, path = files[-1]
            with contextlib.suppress(OSError):
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[:12]
                texts.append(f"<h3>{html.escape(lab)}, iteration {step}</h3><pre>"
                             + html.escape("\n".join(lines)) + "</pre>")
    if texts:
        parts += ["<h2>Text samples</h2>", *texts]
    surfaces = [(lab, run.path / "figures" / "final.png") for run, lab in zip(runs, labs)
                if run.command == "toy" and (run.path / "figures" / "final.png").is_file()]
    if surfaces:
        parts.append("<h2>Critic value surfaces (last)</h2><div class=\"grid\">")
        for lab, path in surfaces:
            with contextlib.suppress(OSError):
                parts.append(f"<figure>{_img(path.read_bytes(), 'image/png', lab)}<figcaption>"
                             f"{html.escape(lab)}</figcaption></figure>")
        parts.append("</div>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
