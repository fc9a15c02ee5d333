// TLS and mutual TLS for the gRPC port (--tls-cert, --tls-key, --tls-client-ca). Called once at
// start-up on the main thread.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace grpc {
class ServerCredentials;
}  // namespace grpc

namespace troupe {

struct TlsOptions {
  std::string cert_file = "";       // PEM certificate chain of the server; "" = plaintext
  std::string key_file = "";        // PEM private key of cert_file
  std::string client_ca_file = "";  // PEM CA bundle; set = clients must present a cert it signed
};

// Insecure credentials when cert_file and key_file are empty; else TLS with them, requiring
// and verifying client certificates when client_ca_file is set. kInvalidArgument for a
// certificate without its key (or the reverse) or a client CA without a server certificate;
// kFailedPrecondition naming a file that cannot be read or holds no PEM block.
[[nodiscard]] absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options);

}  // namespace troupe
