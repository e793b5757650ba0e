"""How each disk is erased, decided from ``hdparm -I`` and ``nvme id-ctrl``
output. ATA and NVMe hardware do not exist on this machine, so their
tools' output is scripted (fixtures below, in the tools' real formats)
and the erase commands are recorded, not run; the overwrite itself runs
for real on loop devices in tests/functional/test_erase_loop.py."""

import json

import pytest

from fa_agent import errors
from fa_agent import input_format
from fa_agent import runner as agent_runner
from fa_agent import secure_erase
from fa_agent import steps
from fa_agent.steps import context

GiB = 1024 ** 3

HDPARM_HEAD = (
    '\n/dev/sda:\n\nATA device, with non-removable media\n'
    '\tModel Number:       INTEL SSDSC2BB240G4\n'
    '\tSerial Number:      BTWL0000000000\n')
HDPARM_TAIL = ('\tLogical Unit WWN Device Identifier: 55cd2e404b4fe1a9\n'
               'Checksum: correct\n')


def hdparm(*lines):
    return (HDPARM_HEAD + 'Security: \n\tMaster password revision code = '
            '65534\n' + ''.join('\t%s\n' % line for line in lines) +
            '\t2min for SECURITY ERASE UNIT. 2min for ENHANCED SECURITY '
            'ERASE UNIT.\n' + HDPARM_TAIL)


ATA_READY = hdparm('\tsupported', 'not\tenabled', 'not\tlocked',
                   'not\tfrozen', 'not\texpired: security count',
                   '\tsupported: enhanced erase')
ATA_FROZEN = hdparm('\tsupported', 'not\tenabled', 'not\tlocked',
                    '\tfrozen', 'not\texpired: security count')
ATA_UNSUPPORTED = hdparm('not\tsupported', 'not\tenabled', 'not\tlocked',
                         'not\tfrozen')
ATA_NO_SECURITY = HDPARM_HEAD + HDPARM_TAIL
NVME_CRYPTO = json.dumps({'vid': 5197, 'oacs': 0x17, 'fna': 0x4})
NVME_USER_DATA = json.dumps({'vid': 5197, 'oacs': 0x6, 'fna': 0x0})
NVME_NO_FORMAT = json.dumps({'vid': 5197, 'oacs': 0x4, 'fna': 0x0})


def options(**kwargs):
    return input_format.EraseOptions(mode='full', **kwargs)


def recorder(**replies):
    return agent_runner.RecordingRunner(
        {tuple(k.split()): v for k, v in replies.items()})


@pytest.mark.parametrize('path,reply,method,detail', [
    ('/dev/sda', ATA_READY, 'ata_secure_erase', {'enhanced': True}),
    ('/dev/sda', ATA_UNSUPPORTED, 'overwrite', {}),
    ('/dev/sda', ATA_NO_SECURITY, 'overwrite', {}),
    # A virtio disk: hdparm -I fails (no ATA behind it).
    ('/dev/vda', errors.CommandFailed('HDIO_DRIVE_CMD(identify) failed'),
     'overwrite', {}),
    ('/dev/nvme0n1', NVME_CRYPTO, 'nvme_format', {'ses': 2}),
    ('/dev/nvme0n1', NVME_USER_DATA, 'nvme_format', {'ses': 1}),
    ('/dev/nvme0n1', NVME_NO_FORMAT, 'overwrite', {}),
])
def test_method_per_device(path, reply, method, detail):
    tool = 'nvme id-ctrl' if 'nvme' in path else 'hdparm -I'
    rec = recorder(**{tool: reply})
    chosen, why = secure_erase.choose(rec, path, options())
    assert chosen == method
    assert why.items() >= detail.items()
    assert why['why']


def test_disabled_secure_erase_overwrites_without_asking_the_disk():
    rec = recorder(**{'hdparm -I': ATA_READY, 'nvme id-ctrl': NVME_CRYPTO})
    off = options(ata_secure_erase=False, nvme_secure_erase=False)
    assert secure_erase.choose(rec, '/dev/sda', off)[0] == 'overwrite'
    assert secure_erase.choose(rec, '/dev/nvme0n1', off)[0] == 'overwrite'
    assert rec.commands == []


def test_frozen_drive_fails_unless_falling_back_is_allowed():
    rec = recorder(**{'hdparm -I': ATA_FROZEN})
    with pytest.raises(errors.CommandFailed) as exc:
        secure_erase.choose(rec, '/dev/sda', options())
    assert 'frozen' in str(exc.value)
    assert 'continue_if_disk_secure_erase_fails' in str(exc.value)
    method, why = secure_erase.choose(
        rec, '/dev/sda', options(continue_if_secure_erase_fails=True))
    assert method == 'overwrite' and 'frozen' in why['why']


def test_security_section_parsing():
    assert 'not frozen' in secure_erase.ata_security(ATA_READY)
    assert 'supported: enhanced erase' in secure_erase.ata_security(
        ATA_READY)
    assert secure_erase.ata_security(ATA_NO_SECURITY) == []


# -- the erase step, recorded --------------------------------------------

def lsblk(*disks):
    return json.dumps({'blockdevices': [
        {'name': p.rsplit('/', 1)[1], 'path': p, 'size': 20 * GiB,
         'type': 'disk', 'rota': False, 'ro': False, 'rm': False,
         'serial': serial} for p, serial in disks]})


def erase_context(disks, mode='full', replies=None, **kwargs):
    inventory = lsblk(*disks)
    replies = dict(replies or {})
    replies[('lsblk', '--json', '--bytes', '--nodeps')] = inventory
    rec = agent_runner.RecordingRunner(replies)
    document = input_format.build_erase(
        [{'type': 'disk', 'id': 'd%d' % n, 'match': {'serial': serial}}
         for n, (_, serial) in enumerate(disks)],
        options=input_format.EraseOptions(mode=mode, **kwargs))
    request = input_format.parse(json.loads(json.dumps(document)))
    return context.Context(request, rec, target_dir='/target'), rec


def test_step_erases_each_disk_its_own_way():
    ctx, rec = erase_context(
        [('/dev/sda', 'ATA1'), ('/dev/nvme0n1', 'NV1'), ('/dev/vda', 'V1')],
        replies={('hdparm', '-I', '/dev/sda'): ATA_READY,
                 ('hdparm', '-I', '/dev/vda'): errors.CommandFailed('no'),
                 ('nvme', 'id-ctrl'): NVME_CRYPTO},
        concurrency=1)
    steps.run(ctx, steps.selected(['erase'], 'erase'))
    assert {d: ctx.devices[d]['erased_by'] for d in ('d0', 'd1', 'd2')} == {
        'd0': 'ata_secure_erase', 'd1': 'nvme_format', 'd2': 'overwrite'}
    assert ('hdparm', '--user-master', 'u', '--security-erase-enhanced',
            'NULL', '/dev/sda') in rec.commands
    assert ('nvme', 'format', '/dev/nvme0n1', '-s', '2', '-f') \
        in rec.commands
    assert ('shred', '--force', '--verbose', '--iterations', '1',
            '/dev/vda') in rec.commands
    assert ('#', 'BLKZEROOUT over all of /dev/vda') in rec.commands
    # Nothing else is overwritten, and no wipe ran besides.
    assert not [c for c in rec.commands if c[0] == 'shred'
                and c[-1] != '/dev/vda']


def test_failed_secure_erase_fails_or_falls_back_to_overwrite():
    failing = {('hdparm', '-I', '/dev/sda'): ATA_READY,
               ('hdparm', '--user-master', 'u', '--security-erase-enhanced'):
               errors.CommandFailed('erase failed')}
    ctx, rec = erase_context([('/dev/sda', 'ATA1')], replies=failing)
    with pytest.raises(errors.CommandFailed):
        steps.run(ctx, steps.selected(['erase'], 'erase'))
    assert not [c for c in rec.commands if c[0] == 'shred']
    ctx, rec = erase_context([('/dev/sda', 'ATA1')], replies=failing,
                             continue_if_secure_erase_fails=True)
    steps.run(ctx, steps.selected(['erase'], 'erase'))
    assert ctx.devices['d0']['erased_by'] == 'overwrite'
    assert [c for c in rec.commands if c[0] == 'shred']


def test_express_uses_nvme_format_only():
    ctx, rec = erase_context(
        [('/dev/sda', 'ATA1'), ('/dev/nvme0n1', 'NV1')], mode='express',
        replies={('hdparm', '-I'): ATA_READY,
                 ('nvme', 'id-ctrl'): NVME_USER_DATA})
    steps.run(ctx, steps.selected(['erase'], 'erase'))
    assert ctx.devices['d0']['erased_by'] == 'metadata'
    assert ctx.devices['d1']['erased_by'] == 'nvme_format'
    assert ('sgdisk', '--zap-all', '/dev/sda') in rec.commands
    assert not [c for c in rec.commands if c[0] == 'shred']
    assert not [c for c in rec.commands if '--security-erase' in ' '.join(c)]


def test_read_only_disk_fails_a_full_erase_unless_skipping_is_allowed():
    inventory = json.dumps({'blockdevices': [
        {'name': 'sda', 'path': '/dev/sda', 'size': 20 * GiB,
         'type': 'disk', 'ro': True, 'rm': False, 'serial': 'RO1'}]})
    for mode, skip, fails in (('full', False, True), ('full', True, False),
                              ('metadata', False, False)):
        rec = agent_runner.RecordingRunner(
            {('lsblk', '--json', '--bytes', '--nodeps'): inventory})
        document = input_format.build_erase(
            [{'type': 'disk', 'id': 'd0', 'match': {'serial': 'RO1'}}],
            options=input_format.EraseOptions(mode=mode,
                                              skip_read_only=skip))
        ctx = context.Context(input_format.parse(document), rec,
                              target_dir='/target')
        if fails:
            with pytest.raises(errors.CommandFailed) as exc:
                steps.run(ctx, steps.selected(['erase'], 'erase'))
            assert 'erase_skip_read_only' in str(exc.value)
        else:
            steps.run(ctx, steps.selected(['wipe', 'erase'], 'erase'))
            assert ctx.devices['d0']['skipped'] == 'read-only'
        assert not [c for c in rec.commands
                    if c[0] in ('shred', 'wipefs', 'sgdisk', 'hdparm')]


def test_disk_swapped_after_discovery_is_refused_before_anything_is_written():
    """The agent's own re-check on the disk (not only the planner's
    match): lsblk at discovery shows serial ATA1, the fresh look right
    before erasing shows another disk at the same name."""
    from fa_agent import erase_guard
    from fa_agent.scheme import inventory as inv
    swapped = json.dumps({'blockdevices': [
        {'name': 'sda', 'path': '/dev/sda', 'size': 20 * GiB,
         'type': 'disk', 'ro': False, 'rm': False, 'serial': 'OTHER'}]})
    for mode in ('full', 'metadata'):
        ctx, rec = erase_context(
            [('/dev/sda', 'ATA1')], mode=mode, replies={
                ('lsblk', '--json', '--bytes', '--nodeps', '-o',
                 erase_guard.COLUMNS): swapped,
                ('lsblk', '--json', '--bytes', '--nodeps', '-o',
                 inv.LSBLK_COLUMNS): lsblk(('/dev/sda', 'ATA1'))})
        with pytest.raises(errors.DiskNotFound) as exc:
            steps.run(ctx, steps.selected(['wipe', 'erase'], 'erase'))
        assert "serial 'ATA1' (the disk has 'OTHER')" in str(exc.value)
        assert not [c for c in rec.commands if c[0] in (
            'shred', 'wipefs', 'sgdisk', 'hdparm', 'nvme', 'mdadm')]
