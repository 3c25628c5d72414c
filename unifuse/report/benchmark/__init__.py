"""The benchmark report (``scripts/benchmark_report.py`` -> ``docs/benchmarks.md``).

* :mod:`.suites` — what is evaluated (VIFB dev set with published methods; dev splits);
* :mod:`.cache` — published methods' metric values cached by file content;
* :mod:`.scoring` — fuse with our models and score with :mod:`unifuse.metrics`;
* :mod:`.tables` — means, ranks, Markdown tables;
* :mod:`.generalisation` — tasks TITA never trained on (:mod:`unifuse.data.unseen`);
* :mod:`.provenance` — date, machine, weights;
* :mod:`.document` — the page's text; :mod:`.report` — putting it together.
"""

from .report import BASELINES, ReportConfig, build_report  # noqa: F401
from .suites import DEV_SPLITS, PAPER_METRICS  # noqa: F401
