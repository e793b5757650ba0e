"""OS images: fetched over http(s) or from files, decompressed and
checksummed while they stream, written onto block devices or extracted
into mounted trees. See doc/source/images.rst."""

from fa_agent.images.device import extract_tar
from fa_agent.images.device import write_to_device
from fa_agent.images.grow import grow_filesystem

__all__ = ['extract_tar', 'grow_filesystem', 'write_to_device']
