"""Topic-to-topic processing: Kafka client glue, the scorer and the monitor.

Code here never reads the environment; it receives frozen config objects from
``services``.
"""
