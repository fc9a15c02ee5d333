// absl::Status <-> grpc::Status: the only place the server converts between the two.
// Stateless; safe from any thread.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace troupe {

// Maps the code 1:1 (Abseil and gRPC share the numeric values) and keeps the message.
// OK maps to grpc::Status::OK.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The inverse, for clients and tests.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace troupe
