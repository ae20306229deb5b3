/** The daemon's D-Bus identity, shared by the service, the CLI and the hook. */
export const BUS_NAME = 'org.virtlvmlockd';
export const OBJECT_PATH = '/org/virtlvmlockd';
export const MANAGER_IFACE = 'org.virtlvmlockd.Manager1';
export const ERROR_REFUSED = 'org.virtlvmlockd.Error.Refused';
export const ERROR_FAILED = 'org.virtlvmlockd.Error.Failed';

/** The CLI and the hook reach a non-system bus through this variable (tests, demo). */
export const BUS_ADDRESS_ENV = 'VIRT_LVMLOCKD_BUS_ADDRESS';

export const INTROSPECTION_XML = `<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
  <interface name="${MANAGER_IFACE}">
    <method name="Hook">
      <arg name="domain" type="s" direction="in"/>
      <arg name="op" type="s" direction="in"/>
      <arg name="subop" type="s" direction="in"/>
      <arg name="extra" type="s" direction="in"/>
      <arg name="xml" type="s" direction="in"/>
      <arg name="result" type="s" direction="out"/>
    </method>
    <method name="HookFile">
      <arg name="domain" type="s" direction="in"/>
      <arg name="op" type="s" direction="in"/>
      <arg name="subop" type="s" direction="in"/>
      <arg name="extra" type="s" direction="in"/>
      <arg name="path" type="s" direction="in"/>
      <arg name="result" type="s" direction="out"/>
    </method>
    <method name="Status">
      <arg name="json" type="s" direction="out"/>
    </method>
    <method name="Reconcile">
      <arg name="json" type="s" direction="out"/>
    </method>
    <method name="Reload">
      <arg name="result" type="s" direction="out"/>
    </method>
    <method name="MigrateOut">
      <arg name="domain" type="s" direction="in"/>
      <arg name="result" type="s" direction="out"/>
    </method>
    <method name="Settle">
      <arg name="domain" type="s" direction="in"/>
      <arg name="result" type="s" direction="out"/>
    </method>
  </interface>
  <interface name="org.freedesktop.DBus.Introspectable">
    <method name="Introspect">
      <arg name="xml" type="s" direction="out"/>
    </method>
  </interface>
</node>
`;
