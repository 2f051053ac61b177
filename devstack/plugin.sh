#!/bin/bash
# devstack plugin for snapshot_dashboard: the Horizon panels on the
# dashboard host and the service user they act as. Enable with
#   enable_plugin snapshot-dashboard https://opendev.org/openstack/snapshot-dashboard
# The compute-side agent and the worker join here as they are built.

function install_snapshot_dashboard {
    git_clone "$SNAPSHOT_DASHBOARD_REPO" "$SNAPSHOT_DASHBOARD_DIR" \
        "$SNAPSHOT_DASHBOARD_BRANCH"
    setup_develop "$SNAPSHOT_DASHBOARD_DIR" dashboard,cli
}

function configure_snapshot_dashboard {
    cp -a "$SNAPSHOT_DASHBOARD_DIR"/enabled/_1*.py \
        "$HORIZON_DIR/openstack_dashboard/local/enabled/"
    if is_service_enabled keystone; then
        create_service_user "$SNAPSHOT_DASHBOARD_SERVICE_USER" "admin"
    fi
}

if is_service_enabled horizon; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing snapshot_dashboard"
        install_snapshot_dashboard
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring snapshot_dashboard"
        configure_snapshot_dashboard
    fi
    if [[ "$1" == "unstack" ]]; then
        rm -f "$HORIZON_DIR"/openstack_dashboard/local/enabled/_103*_snapshot_dashboard*.py
    fi
fi
