"""The gateway's routers: ``v1`` (predict, batch), ``oip`` (Open Inference Protocol v2),
``catalogue`` and ``portal`` (the model catalogue and the developer portal)."""
