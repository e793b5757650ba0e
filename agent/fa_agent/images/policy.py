"""What the operator lets images do: which local files a ``file://`` URL
may name, which CA bundle vouches for https servers, whether md5 still
counts as a checksum.

One frozen object, built from the agent's options and passed down to
every fetch, so tests and the conductor never share option state.
"""

import dataclasses
from typing import Optional

# Ironic's own default for [conductor]file_url_allowed_paths.
DEFAULT_FILE_URL_ALLOWED_PATHS = ('/var/lib/ironic',)


@dataclasses.dataclass(frozen=True)
class ImagePolicy:
    """:param file_url_allowed_paths: directories ``file://`` URLs may
        point into; empty disables ``file://``.
    :param ca_file: CA bundle that replaces the system's for https
        image downloads; None keeps the system's.
    :param allow_md5: accept md5 checksums (Ironic's ``[agent]
        allow_md5_checksum``, handed over by the conductor).
    """

    file_url_allowed_paths: tuple = DEFAULT_FILE_URL_ALLOWED_PATHS
    ca_file: Optional[str] = None
    allow_md5: bool = False

    @classmethod
    def from_conf(cls, conf):
        """The policy of the ``provision`` options (see fa_agent.conf)."""
        return cls(
            file_url_allowed_paths=tuple(
                p for p in conf.file_url_allowed_paths if p),
            ca_file=conf.image_ca_file or None,
            allow_md5=conf.allow_md5_checksum)


DEFAULT = ImagePolicy()
