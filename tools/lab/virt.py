"""The lab's own libvirtd and the VMs it runs.

libvirtd runs inside the lab's namespace (so the VMs' taps join the lab's
bridge) and in a private mount namespace where /etc/libvirt,
/var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and /run/libvirt
are the lab's directories: the host's libvirt configuration is neither
read nor changed, and ``down`` removes every trace. Clients reach it
through the socket in the lab's directory (:func:`uri`).

The VMs are TCG guests (no working KVM here) with virtio disks whose
serials the partitioning schemes match, one virtio NIC on the lab's
bridge, and the serial console written to a file, the lab's only window
into them.
"""

import os
import shlex
import subprocess
from xml.sax import saxutils

from lab import host
from lab import procs
from lab import settings

NAME = 'libvirtd'
# Debian's libvirt resolves this user at start, whatever qemu.conf says.
QEMU_USER = 'libvirt-qemu'
LIBVIRT_DIRS = ('/etc/libvirt', '/var/lib/libvirt', '/var/cache/libvirt',
                '/var/log/libvirt', '/run/libvirt')
QEMU_CONF = """# Written by the lab: QEMU as root, no security driver,
# VM output to plain files (no virtlogd).
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
namespaces = []
"""
LIBVIRTD_CONF = """# Written by the lab: the socket is reachable by root only.
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
"""


class VirtError(Exception):
    pass


def _private(lab, directory):
    return lab.path('libvirt', directory.strip('/').replace('/', '-'))


def uri(lab):
    return 'qemu:///system?socket=%s' % os.path.join(
        _private(lab, '/run/libvirt'), 'libvirt-sock')


def start(lab, registry):
    for directory in LIBVIRT_DIRS:
        os.makedirs(_private(lab, directory), exist_ok=True)
    etc = _private(lab, '/etc/libvirt')
    with open(os.path.join(etc, 'qemu.conf'), 'w') as f:
        f.write(QEMU_CONF)
    with open(os.path.join(etc, 'libvirtd.conf'), 'w') as f:
        f.write(LIBVIRTD_CONF)
    script = ['mount --bind %s %s' % (shlex.quote(path), name)
              for name, path in _account_files(lab)]
    for directory in LIBVIRT_DIRS:
        script.append('mkdir -p %s && mount --bind %s %s' % (
            directory, shlex.quote(_private(lab, directory)), directory))
    script.append('exec libvirtd')
    registry.start(NAME, ['unshare', '--mount', '--propagation', 'private',
                          'sh', '-ec', ' && '.join(script)])
    socket = os.path.join(_private(lab, '/run/libvirt'), 'libvirt-sock')
    procs.wait_until(
        lambda: os.path.exists(socket) and virsh(lab, 'version',
                                                 check=False)[0] == 0,
        'libvirtd', 30, registry, NAME)
    define_storage_pool(lab)


def define_storage_pool(lab):
    """libvirt's ``default`` storage pool, a directory of the lab's:
    sushy-tools uploads each virtual-media ISO into it before it
    attaches it as the domain's CD."""
    if virsh(lab, 'pool-info', 'default', check=False)[0] == 0:
        return
    target = lab.path('libvirt', 'images')
    os.makedirs(target, exist_ok=True)
    virsh(lab, 'pool-define-as', 'default', 'dir', '--target', target)
    virsh(lab, 'pool-start', 'default')


def _account_files(lab):
    """Copies of /etc/passwd and /etc/group that also know the user
    libvirt looks up before it reads qemu.conf (the VMs then run as root
    all the same); only libvirtd sees them."""
    files = []
    for name, line in (('passwd', '%s:x:64055:64055::/nonexistent:'
                                  '/usr/sbin/nologin\n'),
                       ('group', '%s:x:64055:\n')):
        with open('/etc/' + name) as f:
            text = f.read()
        if not any(entry.split(':')[0] == QEMU_USER
                   for entry in text.splitlines()):
            text += line % QEMU_USER
        path = lab.path('libvirt', name)
        with open(path, 'w') as f:
            f.write(text)
        files.append(('/etc/' + name, path))
    return files


def virsh(lab, *args, check=True):
    result = subprocess.run(['virsh', '-q', '-c', uri(lab)] + list(args),
                            capture_output=True, text=True, timeout=120)
    if check and result.returncode:
        raise VirtError('virsh %s failed: %s' % (' '.join(args[:2]),
                                                 result.stderr.strip()))
    return result.returncode, result.stdout


def node_dir(lab, node):
    return lab.path('nodes', node.name)


def disk_paths(lab, node):
    return [os.path.join(node_dir(lab, node), 'disk%d.qcow2' % number)
            for number in range(len(node.disks_gib))]


def console_log(lab, node):
    return os.path.join(node_dir(lab, node), 'console.log')


# OVMF's switch for its PXE client over IPv6 (OvmfPkg's fw_cfg knobs).
OVMF_IPV6_PXE = 'opt/org.tianocore/IPv6PXESupport'


def domain_xml(lab, node):
    q = saxutils.escape
    directory = node_dir(lab, node)
    if node.boot_mode == 'uefi':
        firmware = ("<loader readonly='yes' type='pflash'>%s</loader>"
                    "<nvram template='%s'>%s</nvram>" % (
                        host.OVMF_CODE, host.OVMF_VARS,
                        q(os.path.join(directory, 'OVMF_VARS.fd'))))
        # No iPXE option ROM on the NIC: OVMF's own network stack (its PXE
        # and HTTP boot clients) boots the node, as a server's UEFI
        # firmware does; QEMU's ROM would make every boot an iPXE one.
        nic_rom = "<rom enabled='no'/>"
        # The lab's network boots are IPv4: OVMF's PXE over IPv6, tried
        # before HTTP boot, would wait for a DHCPv6 answer with a boot
        # file, which the lab's DHCPv6 does not give (a server's firmware
        # setting, too).
        fw_cfg = ("<sysinfo type='fwcfg'><entry name='%s'>no</entry>"
                  "</sysinfo>" % OVMF_IPV6_PXE)
    else:
        # SeaBIOS has no network stack: QEMU's iPXE ROM is the NIC's PXE
        # ROM, as a server NIC's own boot ROM is.
        firmware = nic_rom = fw_cfg = ''
    disks = ''.join(
        "<disk type='file' device='disk'>"
        "<driver name='qemu' type='qcow2' cache='unsafe'/>"
        "<source file='%s'/><target dev='vd%s' bus='virtio'/>"
        "<serial>%s</serial></disk>" % (
            q(path), chr(ord('a') + number), settings.DISK_SERIAL % number)
        for number, path in enumerate(disk_paths(lab, node)))
    return f"""<domain type='qemu'>
  <name>{node.domain}</name>
  <memory unit='MiB'>{node.memory_mib}</memory>
  <vcpu>{node.vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    {firmware}
    <boot dev='network'/>
  </os>
  {fw_cfg}
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    {disks}
    <interface type='bridge'>
      <mac address='{node.mac}'/>
      <source bridge='{lab.bridge}'/>
      <model type='virtio'/>
      {nic_rom}
    </interface>
    <serial type='file'>
      <source path='{q(console_log(lab, node))}' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def define(lab, node, fresh_disks=True):
    """(Re)define the node's domain, powered off, with empty disks."""
    destroy(lab, node)
    directory = node_dir(lab, node)
    os.makedirs(directory, exist_ok=True)
    for path, size in zip(disk_paths(lab, node), node.disks_gib):
        if fresh_disks or not os.path.exists(path):
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', path,
                            '%dG' % size], check=True)
    xml = os.path.join(directory, 'domain.xml')
    with open(xml, 'w') as f:
        f.write(domain_xml(lab, node))
    virsh(lab, 'define', xml)


def detach_disk(lab, node, number):
    """Take disk ``number`` out of the (powered off) domain, as a failed
    drive pulled from its bay."""
    virsh(lab, 'detach-disk', node.domain, 'vd' + chr(ord('a') + number),
          '--config')


def attach_disk(lab, node, number):
    """Put disk ``number`` back where :func:`domain_xml` has it."""
    virsh(lab, 'attach-disk', node.domain, disk_paths(lab, node)[number],
          'vd' + chr(ord('a') + number), '--config', '--targetbus',
          'virtio', '--subdriver', 'qcow2', '--cache', 'unsafe', '--serial',
          settings.DISK_SERIAL % number)


def destroy(lab, node):
    """Power the domain off and forget it (nothing if it is not there)."""
    if virsh(lab, 'dominfo', node.domain, check=False)[0]:
        return
    virsh(lab, 'destroy', node.domain, check=False)
    virsh(lab, 'undefine', '--nvram', node.domain, check=False)


def power_state(lab, node):
    return virsh(lab, 'domstate', node.domain)[1].strip()


def power_off(lab, node):
    if power_state(lab, node) != 'shut off':
        virsh(lab, 'destroy', node.domain)


def domain_id(lab, node):
    """libvirt's id of the running domain (a new one at every power on),
    or None when it is off."""
    code, out = virsh(lab, 'domid', node.domain, check=False)
    out = out.strip()
    return int(out) if code == 0 and out.isdigit() else None
