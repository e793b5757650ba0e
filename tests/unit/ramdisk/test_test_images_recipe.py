"""The test OS image recipe's pure parts: its cache key, the record
``--json`` prints and ``--output``. The build itself (root, debootstrap,
loop devices) runs in tests/qemu, which boots what it makes."""

import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
spec = importlib.util.spec_from_file_location(
    'test_images_build', os.path.join(ROOT, 'agent', 'testimages',
                                      'build.py'))
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)

SOURCES = [('http://mirror.test/debian', 'bookworm', ['main'])]


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def test_every_package_in_the_list_is_pinned():
    packages = build.ramdisk.read_packages(build.PACKAGES_FILE)
    names = [name for name, _ in packages]
    for needed in ('linux-image-amd64', 'grub-pc-bin', 'grub-efi-amd64-bin',
                   'grub2-common', 'mdadm', 'lvm2', 'initramfs-tools',
                   'systemd-sysv', 'e2fsprogs', 'xfsprogs', 'jq'):
        assert needed in names
    assert [name for name, version in packages if not version] == []


def test_key_follows_packages_overlay_recipes_and_mirror(tmp_path,
                                                         monkeypatch):
    overlay = tmp_path / 'overlay'
    packages = tmp_path / 'packages.txt'
    write(str(overlay / 'etc' / 'hostname'), 'fa-test-image\n')
    write(str(packages), '# the kernel\nlinux-image-amd64=6.1\n')
    monkeypatch.setattr(build, 'OVERLAY_DIR', str(overlay))
    monkeypatch.setattr(build, 'PACKAGES_FILE', str(packages))
    first = build.images_key(SOURCES)
    write(str(packages), '# the kernel, pinned\nlinux-image-amd64=6.1\n')
    assert build.images_key(SOURCES) == first  # comments do not count
    write(str(packages), 'linux-image-amd64=6.2\n')
    second = build.images_key(SOURCES)
    assert second != first
    write(str(overlay / 'usr' / 'local' / 'sbin' / 'fa-marker'), 'echo\n')
    third = build.images_key(SOURCES)
    assert third != second
    assert build.images_key([('http://other.test/debian', 'bookworm',
                              ['main'])]) != third
    # the ramdisk recipe's helpers build these images too
    recipe = tmp_path / 'ramdisk-build.py'
    write(str(recipe), '# changed\n')
    monkeypatch.setattr(build, 'RAMDISK_BUILD', str(recipe))
    assert build.images_key(SOURCES) != third


def manifest():
    return {'key': '0123456789abcdef', 'kernel_version': '6.1.0-1-amd64',
            'build_seconds': 120.0, 'packages': {'jq': '1.6'},
            'artifacts': [
                {'name': 'fs_image', 'file': 'fa-test-image.ext4.zst',
                 'format': 'fs_image', 'compression': 'zstd',
                 'sha256': 'a' * 64, 'size': 1, 'uncompressed_size': 2},
                {'name': 'whole_disk', 'file': 'fa-test-image.raw.zst',
                 'format': 'raw', 'compression': 'zstd',
                 'sha256': 'b' * 64, 'size': 3, 'uncompressed_size': 4}]}


def test_record_lists_each_artifact_with_its_path(tmp_path):
    result = build.record(manifest(), str(tmp_path), str(
        tmp_path / 'manifest.json'), cached=True, seconds=0.04)
    assert 'packages' not in result
    assert result['cached'] is True and result['seconds'] == 0.0
    assert [(a['path'], a['format'], a['compression'], a['sha256'])
            for a in result['artifacts']] == [
        (str(tmp_path / 'fa-test-image.ext4.zst'), 'fs_image', 'zstd',
         'a' * 64),
        (str(tmp_path / 'fa-test-image.raw.zst'), 'raw', 'zstd', 'b' * 64)]
    json.dumps(result)  # what --json prints


def test_output_gets_the_artifacts_and_the_manifest(tmp_path):
    cache = tmp_path / 'cache'
    for name in ('fa-test-image.ext4.zst', 'fa-test-image.raw.zst',
                 'manifest.json'):
        write(str(cache / name), name)
    result = build.record(manifest(), str(cache), str(
        cache / 'manifest.json'), cached=False, seconds=1)
    out = tmp_path / 'out'
    write(str(out / 'fa-test-image.raw.zst'), 'an older build')
    build.copy_to(result, str(out))
    assert sorted(os.listdir(str(out))) == [
        'fa-test-image.ext4.zst', 'fa-test-image.raw.zst', 'manifest.json']
    for artifact in result['artifacts']:
        assert artifact['path'] == str(out / artifact['file'])
        with open(artifact['path']) as f:
            assert f.read() == artifact['file']
    assert result['manifest'] == str(out / 'manifest.json')
