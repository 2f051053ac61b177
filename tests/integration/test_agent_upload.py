"""The agent's upload to the real Glance: the last of a capture's uploads
is held back until the others are in, and one held back never turns its
image active."""

import time

import pytest

from snapshot_dashboard.agent import captures
from snapshot_dashboard.agent import deploy
from tests.integration.conftest import wait_for

DATA = b'held back\n' * 300_000  # 3 MB: three chunks


@pytest.fixture
def image(demo):
    made = demo.glance.images.create(
        name='test-agent-upload', disk_format='raw',
        container_format='bare', visibility='private')
    yield made['id']
    demo.glance.images.delete(made['id'])


@pytest.fixture
def upload(demo):
    # The caller's token, as keystonemiddleware hands it to the agent.
    return deploy.GlanceUploader(['public'])(demo.session.auth)


def test_an_upload_ends_only_once_finish_returns(demo, image, upload,
                                                 tmp_path):
    path = tmp_path / 'copy'
    path.write_bytes(DATA)
    seen = []

    def finish():
        # Every byte is sent, the end is not: Glance saves, and waits.
        wait_for('Glance to take the upload', lambda: status(
            demo, image) == 'saving', timeout_s=60, interval_s=0.2)
        time.sleep(2)
        seen.append(status(demo, image))
    upload(image, str(path), finish=finish)
    assert seen == ['saving']
    shown = demo.glance.images.get(image)
    assert (shown['status'], shown['size']) == ('active', len(DATA))


def test_an_upload_held_back_never_turns_its_image_active(demo, image,
                                                           upload, tmp_path):
    path = tmp_path / 'copy'
    path.write_bytes(DATA)

    def finish():
        raise captures.UploadHeldBack()
    with pytest.raises(captures.UploadHeldBack):
        upload(image, str(path), finish=finish)
    # Glance may take the request after the agent gave it up: the image
    # saves for a moment, then is queued again, never active.
    seen = []

    def settled():
        seen.append(status(demo, image))
        return seen[-5:] == ['queued'] * 5 and (
            'saving' in seen or len(seen) > 20)
    wait_for('Glance to give up the upload', settled, timeout_s=60,
             interval_s=0.5)
    assert 'active' not in seen
    # The image can still be uploaded in full.
    upload(image, str(path))
    assert status(demo, image) == 'active'


def status(clients, image_id):
    return clients.glance.images.get(image_id)['status']
