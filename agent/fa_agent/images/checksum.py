"""The image checksum, computed on the bytes as they arrive (before
decompression, as the image is published) and compared before the write
counts as a success.

Ironic's ``checksum_utils`` checks files the conductor holds; the agent
hashes a stream in a ramdisk without Ironic, so it keeps hashlib, but
follows Ironic's rule: md5 counts only when the operator allows it
(``[agent] allow_md5_checksum``, handed over as ``allow_md5``).
"""

import hashlib

from fa_agent import errors

ALGORITHMS = ('sha256', 'sha512', 'md5')


class Verifier:
    """Hashes a stream and checks it against the expected checksum.

    With no expected checksum nothing is hashed: the digest would prove
    nothing and costs a core's time on a large image.
    """

    def __init__(self, expected, what='image', allow_md5=False):
        self.expected = expected
        self.what = what
        if expected is not None and expected.algorithm not in ALGORITHMS:
            raise errors.BadInput(
                '%s: checksum algorithm must be one of %s, not %r'
                % (what, ', '.join(ALGORITHMS), expected.algorithm))
        if expected is not None and expected.algorithm == 'md5' and \
                not allow_md5:
            raise errors.BadInput(
                '%s: md5 checksums are not accepted (md5 collisions are '
                'cheap); publish a sha256 or sha512 checksum, or allow md5 '
                'with --allow-md5-checksum ([agent] allow_md5_checksum on '
                'the conductor)' % what)
        self.reset()

    def reset(self):
        """Forget what was hashed: the stream starts again."""
        self._hash = (hashlib.new(self.expected.algorithm)
                      if self.expected is not None else None)

    def update(self, data):
        if self._hash is not None:
            self._hash.update(data)

    def verify(self):
        """The computed digest (hex); raises on a mismatch.

        :raises errors.ChecksumMismatch: the bytes are not the image the
            checksum describes.
        """
        if self._hash is None:
            return None
        actual = self._hash.hexdigest()
        if actual != self.expected.value.lower():
            raise errors.ChecksumMismatch(
                '%s: %s checksum mismatch: expected %s, got %s'
                % (self.what, self.expected.algorithm,
                   self.expected.value.lower(), actual))
        return actual
