"""Item 9 (Ironic's own checks), the agent's half of ``[agent]
allow_md5_checksum``: an md5 image checksum is refused before a byte is
written unless the policy allows md5 (the provision option
``--allow-md5-checksum``, which the conductor sets from Ironic's
option). Before the fix md5 was always accepted."""

import hashlib

import pytest

from fa_agent import errors
from fa_agent import images
from fa_agent.images import policy
from fa_agent.scheme import model

DATA = b'an image whose md5 anyone can collide ' * 1000


def md5_image(tmp_path):
    (tmp_path / 'image.raw').write_bytes(DATA)
    return model.Image(url='file://%s/image.raw' % tmp_path, format='raw',
                       target='d0', id='root', checksum=model.Checksum(
                           'md5', hashlib.md5(DATA).hexdigest()))


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / 'disk'
    path.write_bytes(b'\xaa' * len(DATA))
    return path


def test_md5_is_refused_by_default(tmp_path, disk):
    allowed = policy.ImagePolicy(file_url_allowed_paths=(str(tmp_path),))
    with pytest.raises(errors.BadInput, match='md5 checksums are not '
                                              'accepted'):
        images.write_to_device(md5_image(tmp_path), str(disk),
                               policy=allowed)
    assert disk.read_bytes() == b'\xaa' * len(DATA)


def test_md5_counts_when_allowed(tmp_path, disk):
    allowed = policy.ImagePolicy(file_url_allowed_paths=(str(tmp_path),),
                                 allow_md5=True)
    result = images.write_to_device(md5_image(tmp_path), str(disk),
                                    policy=allowed)
    assert disk.read_bytes() == DATA
    assert result['checksum'] == hashlib.md5(DATA).hexdigest()
