"""The clients' shared session."""

from keystoneauth1 import session as ks_session
import requests

from snapshot_dashboard.orchestration import clients


def test_the_session_keeps_a_connection_per_parallel_capture():
    session = ks_session.Session()
    clients.Clients(session)
    for prefix in ('http://', 'https://'):
        adapter = session.session.adapters[prefix]
        assert isinstance(adapter, ks_session.TCPKeepAliveAdapter)
        assert adapter._pool_maxsize == clients.POOL_SIZE


def test_an_adapter_of_another_kind_is_left_alone():
    class Recording(requests.adapters.HTTPAdapter):
        pass
    session = ks_session.Session()
    mine = Recording()
    session.session.mount('http://', mine)
    clients.Clients(session)
    assert session.session.adapters['http://'] is mine


def test_a_wider_pool_is_not_narrowed():
    session = ks_session.Session()
    wide = ks_session.TCPKeepAliveAdapter(pool_maxsize=64)
    session.session.mount('https://', wide)
    clients.Clients(session)
    assert session.session.adapters['https://'] is wide
