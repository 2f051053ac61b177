"""``snapshot-dashboard-api``: the REST API of snapshot sets.

The front door of the CLI and of any other client, in the service catalog
under the type ``snapshot-sets``: runs (queued for the worker, followed
step by step), sets, and backup schedules, on the same models and database
as the worker, with the caller's own Keystone token. Horizon's views call
the same core and queue the same runs.
"""
