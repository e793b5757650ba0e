#!/bin/bash
# devstack plugin for ironic-fa-driver: installs the driver and the agent,
# enables the fuel-agent deploy interface and fuel-* hardware types in
# ironic.conf, builds the bootstrap ramdisk and sets it on the test nodes.

function install_ironic_fa {
    # The agent package carries the scheme model the driver imports.
    setup_develop $IRONIC_FA_DIR/agent
    setup_develop $IRONIC_FA_DIR
}

function _ironic_fa_add_to_list {
    # Append $3 to the comma-separated option $1.$2 unless it is there.
    local section=$1 option=$2 values=$3 current value
    current=$(iniget $IRONIC_CONF_FILE $section $option)
    for value in ${values//,/ }; do
        if [[ ",$current," != *",$value,"* ]]; then
            current=${current:+$current,}$value
        fi
    done
    iniset $IRONIC_CONF_FILE $section $option "$current"
}

function configure_ironic_fa {
    _ironic_fa_add_to_list DEFAULT enabled_hardware_types $IRONIC_FA_HARDWARE_TYPES
    _ironic_fa_add_to_list DEFAULT enabled_deploy_interfaces $IRONIC_FA_DEPLOY_INTERFACE
    if [[ "$IRONIC_FA_SET_DEFAULT" == "True" ]]; then
        iniset $IRONIC_CONF_FILE DEFAULT default_deploy_interface $IRONIC_FA_DEPLOY_INTERFACE
    fi
    iniset $IRONIC_CONF_FILE fuel_agent ssh_user $IRONIC_FA_SSH_USER
    iniset $IRONIC_CONF_FILE fuel_agent scheme_library_dir $IRONIC_FA_SCHEME_DIR
    iniset $IRONIC_CONF_FILE fuel_agent deploy_timeout $IRONIC_FA_DEPLOY_TIMEOUT
    sudo install -d -o $STACK_USER $IRONIC_FA_SCHEME_DIR
}

function build_ironic_fa_ramdisk {
    if [[ "$IRONIC_FA_BUILD_RAMDISK" != "True" ]]; then
        return
    fi
    mkdir -p $IRONIC_FA_RAMDISK_DIR
    sudo $IRONIC_FA_RAMDISK_BUILD_CMD --output $IRONIC_FA_RAMDISK_DIR
}

function upload_ironic_fa_ramdisk {
    # Upload kernel and initramfs to Glance, then point every test node at them.
    local kernel_id ramdisk_id node
    kernel_id=$(openstack --os-cloud devstack-admin image create fa-deploy-kernel \
        --public --disk-format aki --container-format aki \
        --file $IRONIC_FA_RAMDISK_DIR/vmlinuz -f value -c id)
    ramdisk_id=$(openstack --os-cloud devstack-admin image create fa-deploy-ramdisk \
        --public --disk-format ari --container-format ari \
        --file $IRONIC_FA_RAMDISK_DIR/initramfs -f value -c id)
    for node in $(openstack --os-cloud devstack-admin baremetal node list -f value -c UUID); do
        openstack --os-cloud devstack-admin baremetal node set $node \
            --deploy-interface $IRONIC_FA_DEPLOY_INTERFACE \
            --driver-info deploy_kernel=$kernel_id \
            --driver-info deploy_ramdisk=$ramdisk_id
    done
}

if is_service_enabled ir-fa; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing ironic-fa-driver"
        install_ironic_fa
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring ironic-fa-driver"
        configure_ironic_fa
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Building the ironic-fa-driver bootstrap ramdisk"
        build_ironic_fa_ramdisk
    elif [[ "$1" == "stack" && "$2" == "test-config" ]]; then
        upload_ironic_fa_ramdisk
    fi
    if [[ "$1" == "clean" ]]; then
        rm -rf $IRONIC_FA_RAMDISK_DIR
    fi
fi
