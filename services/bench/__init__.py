"""``modelstream bench``: how fast and how lean the scorer is, next to the broker's own
floor and two baselines, in one run on one broker with the same client settings
(``streams.kafka``), so the ratios mean something. Every reader of replies uses
``streams.kafka.reply_reader_config`` (read_committed, 10 ms fetch wait).

Each throughput variant reads its own topic of N Avro requests, produced before the
variant starts, so a rate is a processing rate, never a producer rate:

- **passthrough**: a consumer that produces each message unchanged (no decode, no
  model), batching like the scorer (its default ``max_batch``); plain (flush, then
  commit) and transactional (a committer thread commits batch N while batch N+1 is
  consumed, as the scorer does).
- **floor**: one single-record transaction at a time (begin, produce, send offsets,
  commit) read back by a reply reader, with no other load: the fastest an exactly-once
  reply can be on this broker (``txn_floor_ms``).
- **scorer**: ``modelstream run scorer`` as a subprocess, champion + shadow challenger,
  one transaction per micro-batch; timed from the earliest reply's CreateTime to the N-th
  reply read back. The same process then serves N requests for a scikit-learn champion +
  challenger (``scorer_sklearn_eps``).
- **faust**: a faust-streaming agent (:mod:`services.bench.faust_app`) doing the same
  per-request work, as a subprocess per variant (one event at a time or ``take()``
  batches; asyncio or uvloop), timed the same way; ``faust_eps`` is the best variant.
- **latency**: the same scorer process at a fixed offered rate, open loop; reply arrival
  minus the request's due time, p50 / p95 / p99 after a one-second warm-up; then the
  same for a second scorer process in at-least-once mode (``fast_latency_ms``).
- **RSS**: the scorer's ``VmRSS`` every 0.5 s: at ready, after the throughput phases
  (warm), peak, and at the end of the latency phase.
- **swap**: the same scorer process under open-loop load at the offered rate for a
  second model, whose challenger is promoted mid-load: promotion committed → first reply
  by the new version (``swap_gap_ms``), and the longest gap between consecutive replies
  (``swap_max_reply_gap_ms``); every request answered once, old version strictly before
  new.
- **challenger coverage**: from the prediction logs, the share of requests in the shadow
  sample whose challenger scored (or failed on its own).
- **monitor**: the exactly-once monitor loop with ``modelstream run monitor``'s defaults
  over every prediction log of the run: one instance in-process (``monitor_eps``, target
  1.5x ``scorer_eps``), then three, a process each in one group, over the same records
  replayed once all three joined (``monitor3_eps``); and the sink (``sink_rows_per_s``).

``--gateway`` (:func:`run_gateway_bench`) measures modelstream against MLServer instead,
one scikit-learn model served by both on the same machine and broker:

- **gateway vs MLServer, REST and gRPC**: requests/s and p50 / p99 at a fixed number of
  requests in flight, the same closed-loop load generators (a process each: HTTP, and
  gRPC ``ModelInfer`` with pre-serialized requests) and rows for both; the gateway
  scoring in-process and, through the scorer, with ``--via-kafka``; MLServer in every
  configuration of a grid (``parallel_workers`` x adaptive batching), compared at its
  best per metric;
- **logged ratio**: the direct gateway's prediction-log records / the answers it gave;
- **scorer vs MLServer Kafka mode** (batching on): events/s over N requests on the same
  broker.

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
