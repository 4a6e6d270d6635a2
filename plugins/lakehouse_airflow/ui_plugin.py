"""The lakehouse's Airflow plugin: the /lakehouse pages (ui/app.py) mounted in the api-server,
"Lakehouse health" and "Lineage" in the UI's navigation (external views shown inside the UI),
and the operators' extra links (ui/links.py). Airflow loads this file from the plugins folder;
nothing imports it."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from lakehouse_airflow.ui.links import ALL_LINKS


class LakehousePlugin(AirflowPlugin):
    name = "lakehouse"
    operator_extra_links = ALL_LINKS
    external_views = [
        {"name": "Lakehouse health", "href": "/lakehouse/health", "url_route": "lakehouse-health",
         "destination": "nav", "category": "browse"},
        {"name": "Lineage", "href": "/lakehouse/lineage", "url_route": "lakehouse-lineage",
         "destination": "nav", "category": "browse"},
    ]

    @property
    def fastapi_apps(self):  # imported by the api-server only when it asks
        from lakehouse_airflow.ui.app import app

        return [{"app": app, "url_prefix": "/lakehouse", "name": "Lakehouse pages"}]
