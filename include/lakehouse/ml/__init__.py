"""Customer churn propensity on the synthetic shop: point-in-time features (Spark), training
and registry (MLflow), drift gate (Evidently), batch inference. Label: no order in the
`LABEL_WINDOW_DAYS` days after the as-of date.
Never writes Delta except through tables.delta (or spark.bridge for Spark jobs)."""
