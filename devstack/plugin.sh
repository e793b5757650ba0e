#!/bin/bash
# devstack plugin for ironic-fa-driver: installs the driver and the agent,
# enables the fuel-agent deploy interface and fuel-* hardware types in
# ironic.conf, builds the bootstrap ramdisk and moves the nodes devstack
# enrolled to the fuel-* hardware types with that ramdisk.
#
# Order inside a devstack run (Ironic's plugin is enabled first):
#   post-config  Ironic writes ironic.conf, then configure_ironic_fa edits it;
#   extra        Ironic starts and enrolls nodes with IRONIC_DEPLOY_DRIVER
#                (ipmi by default), then the ramdisk is built;
#   test-config  the ramdisk goes to Glance and the nodes switch to fuel-*.

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

function _ironic_fa_check_default {
    # A default deploy interface must be supported by every enabled
    # hardware type, or the conductor does not start.
    local hw_type others=""
    for hw_type in $(iniget $IRONIC_CONF_FILE DEFAULT enabled_hardware_types | tr ',' ' '); do
        if [[ ",$IRONIC_FA_HARDWARE_TYPES," != *",$hw_type,"* ]]; then
            others="$others $hw_type"
        fi
    done
    if [[ -n "$others" ]]; then
        die $LINENO "IRONIC_FA_SET_DEFAULT=True, but the enabled hardware" \
            "types$others do not support $IRONIC_FA_DEPLOY_INTERFACE;" \
            "Ironic's conductor would not start. Leave IRONIC_FA_SET_DEFAULT" \
            "False (the fuel-* types default to $IRONIC_FA_DEPLOY_INTERFACE)."
    fi
}

function configure_ironic_fa {
    _ironic_fa_add_to_list DEFAULT enabled_hardware_types $IRONIC_FA_HARDWARE_TYPES
    _ironic_fa_add_to_list DEFAULT enabled_deploy_interfaces $IRONIC_FA_DEPLOY_INTERFACE
    if [[ "$IRONIC_FA_SET_DEFAULT" == "True" ]]; then
        _ironic_fa_check_default
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

function _ironic_fa_baremetal {
    # The cloud lib/ironic uses (it sets IRONIC_OS_CLOUD), else devstack-admin.
    openstack --os-cloud ${IRONIC_OS_CLOUD:-devstack-admin} baremetal "$@"
}

function _ironic_fa_twin {
    # The fuel-* hardware type that is hardware type $1 plus fuel-agent.
    case $1 in
        ipmi|fuel-ipmi) echo fuel-ipmi ;;
        redfish|fuel-redfish) echo fuel-redfish ;;
        manual-management|fuel-manual) echo fuel-manual ;;
    esac
}

function switch_ironic_fa_nodes {
    # Move every enrolled node with a stock type that has an enabled fuel-*
    # twin to that twin, with the fuel-agent deploy interface and the
    # ramdisk $1 (kernel) $2 (initramfs). Ironic allows changing the driver
    # in enroll, manageable and available; other nodes are left alone.
    local kernel=$1 ramdisk=$2 listing node driver twin
    listing=$(_ironic_fa_baremetal node list --fields uuid driver -f value)
    while read -r node driver; do
        [[ -n "$node" ]] || continue
        twin=$(_ironic_fa_twin $driver)
        if [[ -z "$twin" || ",$IRONIC_FA_HARDWARE_TYPES," != *",$twin,"* ]]; then
            echo "ironic-fa-driver: node $node keeps hardware type $driver" \
                "(no enabled fuel-* type accepts it)"
            continue
        fi
        _ironic_fa_baremetal node set $node \
            --driver $twin \
            --deploy-interface $IRONIC_FA_DEPLOY_INTERFACE \
            --driver-info deploy_kernel=$kernel \
            --driver-info deploy_ramdisk=$ramdisk
    done <<< "$listing"
}

function upload_ironic_fa_ramdisk {
    # Upload kernel and initramfs to Glance, then move the nodes onto them.
    local kernel_id ramdisk_id
    kernel_id=$(openstack --os-cloud devstack-admin image create fa-deploy-kernel \
        --public --disk-format aki --container-format aki \
        --file $IRONIC_FA_RAMDISK_DIR/vmlinuz -f value -c id)
    ramdisk_id=$(openstack --os-cloud devstack-admin image create fa-deploy-ramdisk \
        --public --disk-format ari --container-format ari \
        --file $IRONIC_FA_RAMDISK_DIR/initramfs -f value -c id)
    if [[ "$IRONIC_FA_SWITCH_NODES" == "True" ]]; then
        switch_ironic_fa_nodes $kernel_id $ramdisk_id
    fi
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
        echo_summary "Moving the enrolled nodes to fuel-agent"
        upload_ironic_fa_ramdisk
    fi
    if [[ "$1" == "clean" ]]; then
        rm -rf $IRONIC_FA_RAMDISK_DIR
    fi
fi
