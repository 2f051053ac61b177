"""The small WSGI toolkit of the project's two services, the compute-side
agent and the REST API (placement's way: routes as a dict, handlers as
plain functions, middleware assembled in code). No Django here.

A handler is ``handler(request, context, **parts) -> (status, body)``;
``HTTPError`` raised anywhere in it becomes that status with
``{"message": ...}``.
"""

import json
import logging
import re
import time

import webob

LOG = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 64 * 1024
# An oversized body up to this is read and dropped before the 413.
DRAIN_MAX_BYTES = 1024 * 1024
DRAIN_CHUNK = 64 * 1024


class HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def json_response(status, body, headers=None):
    response = webob.Response(status=status, content_type='application/json',
                              charset='utf-8')
    response.headers.update(headers or {})
    if body is not None:
        response.text = json.dumps(body)
    return response


def json_body(request, max_bytes=DEFAULT_MAX_BODY_BYTES):
    """The request's JSON object ({} without a body); 413 past
    ``max_bytes``, 400 if it is not a JSON object."""
    length = request.content_length
    if length is not None and length < 0:
        raise HTTPError(400, 'Content-Length cannot be negative.')
    if length is not None and length > max_bytes:
        if length <= DRAIN_MAX_BYTES:
            # Read and dropped, so the connection stays usable: gunicorn's
            # own drain of an unread body resets another keep-alive
            # connection (seen with gunicorn 27).
            for _ in range(0, length, DRAIN_CHUNK):
                if not request.body_file_raw.read(DRAIN_CHUNK):
                    break
        raise HTTPError(413, 'The body is larger than %d bytes.' % max_bytes)
    if length or (length is None and request.is_body_readable):
        # Never more than the limit and one byte, whatever the header says.
        data = request.body_file_raw.read(min(length or max_bytes + 1,
                                              max_bytes + 1))
    else:
        data = b''
    if len(data) > max_bytes:
        raise HTTPError(413, 'The body is larger than %d bytes.' % max_bytes)
    if not data:
        return {}
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise HTTPError(400, 'The body is not JSON.') from None
    if not isinstance(body, dict):
        raise HTTPError(400, 'The body must be a JSON object.')
    return body


class Router:
    """Routes ``{path: {METHOD: handler}}``; ``{name}`` captures a part.
    ``context`` is handed to every handler."""

    def __init__(self, routes, context):
        self.context = context
        self.routes = [
            (re.compile('^%s$' % re.sub(r'\{(\w+)\}', r'(?P<\1>[^/]+)',
                                        path)), methods)
            for path, methods in routes.items()]

    def __call__(self, environ, start_response):
        request = webob.Request(environ)
        for pattern, methods in self.routes:
            match = pattern.match(request.path_info)
            if not match:
                continue
            handler = methods.get(request.method)
            if handler is None:
                response = json_response(405, {
                    'message': 'Method not allowed.'})
                response.allow = sorted(methods)
                return response(environ, start_response)
            try:
                result = handler(request, self.context, **match.groupdict())
            except HTTPError as e:
                result = e.status, {'message': str(e)}
            if isinstance(result, webob.Response):
                return result(environ, start_response)
            status, body = result
            return json_response(status, body)(environ, start_response)
        return json_response(404, {'message': 'Not found.'})(
            environ, start_response)


class RequestLog:
    def __init__(self, application, logger=LOG):
        self.application = application
        self.logger = logger

    def __call__(self, environ, start_response):
        started = time.monotonic()
        status = []

        def remember(code, headers, exc_info=None):
            status.append(code)
            return start_response(code, headers, exc_info)

        try:
            return self.application(environ, remember)
        finally:
            self.logger.info(
                '%s %s %s %.1f ms project %s', environ['REQUEST_METHOD'],
                environ.get('PATH_INFO'), (status or ['-'])[0],
                (time.monotonic() - started) * 1000,
                environ.get('HTTP_X_PROJECT_ID'))


class FaultWrapper:
    """Any unexpected error becomes a JSON 500, never a traceback."""

    def __init__(self, application, message='Internal error; see the log.',
                 logger=LOG):
        self.application = application
        self.message = message
        self.logger = logger

    def __call__(self, environ, start_response):
        try:
            return self.application(environ, start_response)
        except Exception:
            self.logger.exception('Request failed')
            return json_response(500, {'message': self.message})(
                environ, start_response)
