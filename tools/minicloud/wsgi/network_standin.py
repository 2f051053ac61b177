"""The mini-cloud's one stand-in: a network API answering what Nova asks.

Nova reads security groups and ports on every server show and lists
networks and extensions, even for servers booted with ``--nic none``. This
answers every collection with an empty list, so no neutron-server, agent or
database is needed. It is not a network service: nothing can be created.
"""

import json
import re

EXTENSIONS = [
    {'alias': alias, 'name': alias, 'description': alias,
     'links': [], 'updated': '2026-01-01T00:00:00-00:00'}
    for alias in ('security-group', 'port-security', 'binding')]


def application(environ, start_response):
    path = environ.get('PATH_INFO', '/').rstrip('/')
    method = environ['REQUEST_METHOD']
    if path in ('', '/v2.0'):
        body = {'versions': [{'id': 'v2.0', 'status': 'CURRENT',
                              'links': []}]}
        status = '200 OK'
    elif path == '/v2.0/extensions':
        body, status = {'extensions': EXTENSIONS}, '200 OK'
    elif method == 'GET' and re.fullmatch(r'/v2\.0/[a-z-]+(\.json)?', path):
        collection = path.split('/')[2].removesuffix('.json').replace(
            '-', '_')
        body, status = {collection: []}, '200 OK'
    else:
        body = {'NeutronError': {'type': 'NotFound', 'detail': '',
                                 'message': 'The mini-cloud has no network '
                                            'service: %s %s' % (method,
                                                                path)}}
        status = '404 Not Found'
    data = json.dumps(body).encode()
    start_response(status, [('Content-Type', 'application/json'),
                            ('Content-Length', str(len(data)))])
    return [data]
