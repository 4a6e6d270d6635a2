"""The shop as the upstream system: the synthetic shop (generator.py), its landing-file delivery
(landing.py), its Kafka producer (producer.py) and the topics it publishes to (kafka_topics.py).
Produces data for the lakehouse; never writes Delta tables (bronze belongs to ingest)."""
