"""``/`` (no token needed) and ``/v1``: the version documents."""

VERSION = {'id': 'v1.0', 'status': 'CURRENT', 'min_version': '',
           'version': ''}


def _version(request):
    return dict(VERSION, links=[{'rel': 'self',
                                 'href': request.application_url + '/v1/'}])


def list_versions(request, service):
    return 200, {'versions': [_version(request)]}


def show_version(request, service):
    return 200, {'version': _version(request)}
