"""gRPC servicers: decode, call a service, encode."""
