//! haproxy on a proxy host of the fleet.
