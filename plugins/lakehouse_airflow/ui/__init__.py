"""The lakehouse's pages inside the Airflow UI ("Lakehouse health", "Lineage", one page per
table, the latest drift report and data docs) and the operators' extra links to them. The
pages are a FastAPI app the api-server mounts at /lakehouse (plugins/lakehouse_airflow/
ui_plugin.py registers it and the menu entries); they read the registry and ops/ tables only.
"""
