"""What the operator reads when a ramdisk never reported in.

Ironic's timeout messages ("Timeout reached while waiting for callback
for node ...", "... while cleaning the node") name neither the way the
node was booted nor how far its ramdisk got, and each boot interface
fails in its own place (no DHCP answer, no boot loader over TFTP, no
HTTP boot, no virtual media). The driver knows both: the node's boot
interface and mode, and whether a ramdisk looked the node up (it got
an agent token), heartbeated (it announced where to reach it) or had
its agent started. :func:`explain` turns that into one sentence that
says what was missing and where to look; it is added to the deploy's
``last_error`` and to the node's history for cleaning.
"""

from ironic.common import states
from ironic.conductor import utils as manager_utils
from ironic.drivers.modules import boot_mode_utils
from ironic.drivers.modules import deploy_utils

from ironic_fa_driver import operations

# The start of Ironic's own message (ironic.conductor.utils
# cleanup_after_timeout).
DEPLOY_TIMEOUT = 'Timeout reached while waiting for callback'

# What the node's firmware must get, per boot interface, before the
# ramdisk's kernel runs.
_FIRMWARE_NEEDS = {
    'pxe': {'uefi': 'a DHCP answer naming bootx64.efi, then shim, GRUB and '
                    'its <mac>.conf over TFTP',
            'bios': 'a DHCP answer naming pxelinux.0, then PXELINUX and '
                    'its pxelinux.cfg file over TFTP'},
    'ipxe': {None: 'a DHCP answer, an iPXE binary (over TFTP unless its NIC '
                   'ROM is iPXE) and boot.ipxe over HTTP'},
    'http-ipxe': {None: 'UEFI HTTP boot: a DHCP answer with vendor class '
                        'HTTPClient and the URL of the iPXE binary, then '
                        'boot.ipxe over HTTP'},
    'http': {None: 'UEFI HTTP boot: a DHCP answer with vendor class '
                   'HTTPClient and the URL of shim, then a GRUB that asks '
                   'DHCP for its own address (Debian 12\'s signed one '
                   'does not), its grub.cfg and <mac>.conf over HTTP'},
    'redfish-virtual-media': {None: 'the deploy ISO attached by the BMC '
                                    'and booted from it'},
    'redfish-https': {None: 'a UEFI HTTPS boot set up by the BMC'},
}


def explain(node):
    """One sentence on how far the node's ramdisk got, or None when its
    agent started (then the ramdisk is not what failed)."""
    info = node.driver_internal_info or {}
    if info.get(operations.STARTED_AT):
        return None
    mode = boot_mode_utils.get_boot_mode(node)
    boot = 'boot interface %s, %s mode' % (node.boot_interface, mode)
    callback = info.get(operations.CALLBACK)
    if isinstance(callback, dict):
        return ('The ramdisk (%s) heartbeated from %s, but the agent was '
                'never started: the conductor could not log in over SSH '
                'there (see its log).' % (boot, callback.get('address')))
    looked_up = (info.get('agent_secret_token')
                 and not info.get('agent_secret_token_pregenerated'))
    if looked_up:
        return ('The ramdisk (%s) looked the node up but never '
                'heartbeated: see its console (fa-heartbeat names what '
                'it waited for: sshd, its host key, an address).' % boot)
    needs = _FIRMWARE_NEEDS.get(node.boot_interface, {})
    needs = needs.get(mode) or needs.get(None)
    return ('No ramdisk reached Ironic (%s): nothing looked the node up '
            'at %s. The firmware needs %s; the node\'s console shows how '
            'far it got, and fa-heartbeat prints there why it could not '
            'reach the API (no address, no answer).' % (
                boot, _api_url(), needs or 'to boot the deploy ramdisk'))


def on_deploy_failure(node):
    """Add :func:`explain` to ``last_error`` when Ironic failed the
    deploy for want of a callback (deploy interface's ``clean_up``)."""
    if (node.provision_state == states.DEPLOYWAIT
            and (node.last_error or '').startswith(DEPLOY_TIMEOUT)):
        why = explain(node)
        if why:
            node.last_error = '%s. %s' % (node.last_error.rstrip('.'), why)


def on_cleaning_failure(node):
    """Record :func:`explain` in the node's history when cleaning failed
    in clean wait (``tear_down_cleaning``; Ironic writes its own timeout
    message after)."""
    if node.provision_state != states.CLEANFAIL:
        return
    why = explain(node)
    if why:
        manager_utils.node_history_record(
            node, event=why, event_type=states.CLEANING, error=True)


def _api_url():
    try:
        return deploy_utils.get_ironic_api_url()
    except Exception:  # not configured: the message still helps
        return "Ironic's API"
