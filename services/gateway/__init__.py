"""The gateway: one HTTP front door to every model, for clients that cannot speak Kafka.

Requests are checked against the champion's input contract, published to the model's
requests topic with a ``reply-to`` topic owned by this gateway instance, and answered
when the scorer's reply arrives: the same topics, the same contract, the same scorer as
any Kafka producer. Access is governed here: who may call which model (API tokens with
scopes), how often (token bucket + quota per client), with how large a payload.

Parts::

    app.py          create_app(): the FastAPI application and its routers
    bridge.py       KafkaBridge: one producer and one reply consumer shared by all requests
    directory.py    ModelDirectory: the registry, followed live (schemas, versions, roles)
    routes/         /v1 predict + batch, /v2 Open Inference Protocol, catalogue, portal
    clients/        client registry: API tokens (hash at rest), scopes, compacted topic
    policy/         per-client rate limit (token bucket), quota, body size
    admission.py    the process's in-flight limit (503 + Retry-After), the body deadline
    sessions.py     the portal's server-side sessions and CSRF tokens
    fastpath.py     the serving routes dispatched before FastAPI's router
    cli.py          `modelstream clients create|list|revoke`
    service.py      `modelstream run gateway`: settings → config → uvicorn
"""
