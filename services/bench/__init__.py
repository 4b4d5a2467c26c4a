"""``modelstream bench``: how fast and how lean the scorer is, next to two baselines, in one
run on one broker with the same client settings (``streams.kafka``), so the ratios mean
something.

Each variant reads its own topic of N Avro requests, produced before the variant starts,
so a rate is a processing rate, never a producer rate:

- **passthrough**: a consumer that produces each message unchanged (no decode, no
  model), batching like the scorer; plain (flush, then commit) and transactional.
- **scorer**: ``modelstream run scorer`` as a subprocess, champion + shadow challenger,
  one transaction per micro-batch; timed from the earliest reply's CreateTime to the N-th
  reply read back ``read_committed``.
- **faust**: a faust-streaming agent (:mod:`services.bench.faust_app`) doing the same
  per-request work, as a subprocess, timed the same way.
- **latency**: the same scorer process at a fixed offered rate, open loop; reply arrival
  minus the request's due time, p50 / p95 / p99 after a one-second warm-up.
- **RSS**: the scorer's ``VmRSS`` every 0.5 s: at ready, after the throughput phase
  (warm), peak, and at the end of the latency phase.
- **swap**: the same scorer process under open-loop load at the offered rate for a
  second model, whose challenger is promoted mid-load: promotion committed → first reply
  by the new version (``swap_gap_ms``), and the longest gap between consecutive replies
  (``swap_max_reply_gap_ms``); every request answered once, old version strictly before
  new.

``--gateway`` (:func:`run_gateway_bench`) measures modelstream against MLServer instead,
one scikit-learn model served by both on the same machine and broker:

- **gateway vs MLServer REST**: requests/s and p50 / p99 at a fixed concurrency, the same
  closed-loop load generator (its own process) and rows for both;
- **scorer vs MLServer Kafka mode**: events/s over N requests on the same broker.

MLServer runs from a virtualenv of its own under the cache directory, installed on first
use; if that fails, its numbers are reported missing with the reason.

The report checks the issue's targets (:func:`evaluate_targets`) and says met or missed.

Errors::

    BenchError
    ├── ServiceError          a process under test did not start, or died
    ├── LoadError             the requests under test could not be produced
    └── MLServerUnavailableError  MLServer's own virtualenv could not be installed
"""

from services.bench._errors import BenchError, LoadError, MLServerUnavailableError, ServiceError
from services.bench._gateway_run import GatewayConfig, run_gateway_bench
from services.bench._http_load import LoadResult, LoadSpec
from services.bench._latency import LatencySummary, percentile, summarize
from services.bench._load import due_count
from services.bench._report import evaluate_targets, render
from services.bench._rss import parse_vmrss
from services.bench._run import BenchConfig, run_bench

__all__ = [
    "BenchConfig",
    "BenchError",
    "GatewayConfig",
    "LatencySummary",
    "LoadError",
    "LoadResult",
    "LoadSpec",
    "MLServerUnavailableError",
    "ServiceError",
    "due_count",
    "evaluate_targets",
    "parse_vmrss",
    "percentile",
    "render",
    "run_bench",
    "run_gateway_bench",
    "summarize",
]
