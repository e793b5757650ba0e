"""pytest setup shared by every test.

Ironic's own test base is used for the driver tests. Importing
``ironic.tests.unit`` first selects oslo.service's threading backend before
anything imports ``ironic.common``; loading the fake hardware type here
makes the first driver load (which shells out) happen outside a test,
where Ironic's TestCase forbids subprocesses. Agent tests do not need
Ironic, so this is skipped when it is not installed.
"""

try:
    import ironic.tests.unit  # noqa: F401
    import ironic.drivers.fake_hardware  # noqa: F401
except ImportError:  # the agent alone, as in the ramdisk
    pass
