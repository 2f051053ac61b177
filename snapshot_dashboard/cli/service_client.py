"""The REST API of snapshot sets (``snapshot-dashboard-api``) as the CLI
calls it: found in the caller's catalog under ``snapshot-sets``, with the
caller's own keystoneauth session. No Django here."""

from keystoneauth1 import exceptions as ks_exceptions

SERVICE_TYPE = 'snapshot-sets'


class ServiceError(Exception):
    """The API refused or failed; the message is its own."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ServiceNotFound(ServiceError):
    def __init__(self):
        super().__init__(None, (
            'Your cloud has no %s service in its catalog (the REST API of '
            'snapshot sets). An admin can take sets without it with '
            '--in-process.' % SERVICE_TYPE))


class ServiceClient:
    def __init__(self, session, interface=None, region_name=None):
        self.session = session
        self.endpoint_filter = {'service_type': SERVICE_TYPE,
                                'interface': interface or 'public',
                                'region_name': region_name}

    def _call(self, method, path, body=None, params=None, expect=(200,)):
        try:
            response = self.session.request(
                '/v1' + path, method, json=body, params=params,
                raise_exc=False, endpoint_filter=self.endpoint_filter)
        except ks_exceptions.EndpointNotFound:
            raise ServiceNotFound() from None
        if response.status_code not in expect:
            try:
                message = response.json().get('message')
            except ValueError:
                message = None
            raise ServiceError(response.status_code, message or (
                'The snapshot sets service answered %d.'
                % response.status_code))
        return response.json() if response.content else None

    # -- runs --------------------------------------------------------------

    def create_run(self, server_id, devices=None, consistency=None,
                   name=None, description=None, budget_s=None):
        fields = {'server_id': server_id, 'devices': devices,
                  'consistency': consistency, 'name': name,
                  'description': description, 'budget_s': budget_s}
        return self._call('POST', '/runs', {'run': {
            k: v for k, v in fields.items()
            if v is not None or k == 'devices'}}, expect=(202,))['run']

    def get_run(self, run_id):
        return self._call('GET', '/runs/%s' % run_id)['run']

    def list_runs(self, **filters):
        return self._call('GET', '/runs', params=filters)['runs']

    # -- sets --------------------------------------------------------------

    def list_sets(self, server_id=None):
        params = {'server_id': server_id} if server_id else None
        return self._call('GET', '/sets', params=params)['sets']

    def get_set(self, set_id):
        return self._call('GET', '/sets/%s' % set_id)['set']

    def delete_set(self, set_id):
        self._call('DELETE', '/sets/%s' % set_id, expect=(204,))

    def restore_set(self, set_id, devices=None, attach_to=None,
                    in_place=False):
        """Queue the restore of ``devices`` of the set as new volumes (or
        ``in_place``); the run."""
        fields = {'as': 'in-place' if in_place else 'new-volumes',
                  'devices': devices}
        if attach_to:
            fields['attach_to'] = attach_to
        return self._call('POST', '/sets/%s/restore' % set_id,
                          {'restore': fields}, expect=(202,))['run']

    def undo_run(self, run_id):
        """Queue the undo of a restore in place; the new run."""
        return self._call('POST', '/runs/%s/undo' % run_id,
                          expect=(202,))['run']

    # -- schedules ---------------------------------------------------------

    def create_schedule(self, **fields):
        return self._call('POST', '/schedules', {'schedule': fields},
                          expect=(201,))['schedule']

    def list_schedules(self):
        return self._call('GET', '/schedules')['schedules']

    def get_schedule(self, schedule_id):
        return self._call('GET', '/schedules/%s' % schedule_id)['schedule']

    def update_schedule(self, schedule_id, **fields):
        return self._call('PUT', '/schedules/%s' % schedule_id,
                          {'schedule': fields})['schedule']

    def pause_schedule(self, schedule_id):
        return self._call('POST', '/schedules/%s/pause'
                          % schedule_id)['schedule']

    def resume_schedule(self, schedule_id):
        return self._call('POST', '/schedules/%s/resume'
                          % schedule_id)['schedule']

    def delete_schedule(self, schedule_id):
        self._call('DELETE', '/schedules/%s' % schedule_id, expect=(204,))
