"""Fill the generated blocks of the documentation from the JSON in ``benchmarks/results/``.

    python -m benchmarks.report               # the pages' blocks and the plots
    python -m benchmarks.report --check       # exit 1 if a committed page differs
    python -m benchmarks.report --no-plots    # the pages only

Nothing is re-measured: every figure comes from a results file, and the machine and versions
printed next to each table come from that file's ``meta``. ``make report`` runs this; ``make
bench`` runs it after the benchmarks.

The pages (``docs/benchmarks.md``, ``docs/failure_modes.md``, ``docs/telugu_codec.md`` and the
README) are hand-written Markdown. Only their marked blocks and values are generated (see
:mod:`.registry`): tables and figures by the functions registered with :func:`section` or
:func:`region`, the figures inside sentences by those registered with :func:`values`. One
module per part of the pages registers them; to add a table, write a function in one of them::

    @section("docs/benchmarks.md", "speed_table", "speed.json")
    def speed_table(data: dict, fig: Figures) -> str:
        return table(["config", "ms"], rows)

and put ``<!-- report:speed_table -->`` and ``<!-- /report:speed_table -->`` on two lines of
the page where the table goes.
"""

from . import (  # noqa: F401  (each module registers its blocks on import)
    codec_quality,
    ddp,
    failure_losses,
    failure_modes,
    failure_quantizer,
    memory,
    rate_distortion,
    speed,
    telugu_ablation,
    telugu_runs,
    telugu_training,
    usage,
)
from .cli import main
from .registry import (
    DOCS,
    IMG,
    REGIONS,
    RESULTS,
    ROOT,
    VALUES,
    Figures,
    fill_regions,
    load_results,
    re_images,
    region,
    render,
    render_pages,
    section,
    strip_markers,
    values,
)
from .usage import codebook_usage

__all__ = ["DOCS", "IMG", "REGIONS", "RESULTS", "ROOT", "VALUES", "Figures", "codebook_usage",
           "fill_regions", "load_results", "main", "re_images", "region", "render",
           "render_pages", "section", "strip_markers", "values"]
