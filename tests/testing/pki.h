// A test PKI made with the openssl command: a CA with a server certificate for 127.0.0.1 and a
// client certificate, another CA with a client certificate the first does not vouch for, and an
// encrypted copy of the client key (passphrase "s3cret").
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>

#include "tests/testing/temp_dir.h"

namespace herald::test_support {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class Pki {
 public:
  Pki() {
    const std::string d = dir_.path();
    auto run = [&](const std::string& command) {
      ASSERT_EQ(std::system(("cd " + d + " && " + command + " 2>>openssl.log").c_str()), 0)
          << command << "\n"
          << ReadFile(d + "/openssl.log");
    };
    auto ca = [&](const std::string& name, const std::string& cn) {
      run("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj '/CN=" + cn + "' -keyout " +
          name + ".key -out " + name + ".pem");
    };
    auto issue = [&](const std::string& name, const std::string& cn, const std::string& by,
                     const std::string& ext) {
      run("openssl req -newkey rsa:2048 -nodes -subj '/CN=" + cn + "/O=herald tests' -keyout " +
          name + ".key -out " + name + ".csr");
      std::ofstream(d + "/" + name + ".ext") << ext << "\n";
      run("openssl x509 -req -in " + name + ".csr -CA " + by + ".pem -CAkey " + by +
          ".key -CAcreateserial -days 30 -extfile " + name + ".ext -out " + name + ".pem");
    };
    ca("ca", "herald test CA");
    ca("stranger-ca", "another CA");
    issue("server", "127.0.0.1", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    issue("client", "herald client", "ca", "extendedKeyUsage=clientAuth");
    issue("stranger", "stranger client", "stranger-ca", "extendedKeyUsage=clientAuth");
    run("openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:s3cret -in client.key "
        "-out client-encrypted.key");
  }
  std::string path(const std::string& file) const { return dir_.path() + "/" + file; }
  // certificateContent: the PEM blocks of `files` with comments between them, base64.
  std::string Content(std::initializer_list<std::string> files) const {
    std::string pem;
    for (const auto& f : files) pem += "# " + f + "\n" + ReadFile(path(f)) + "\n";
    std::ofstream(path("bundle.pem")) << pem;
    EXPECT_EQ(
        std::system(("openssl base64 -A -in " + path("bundle.pem") + " -out " + path("bundle.b64"))
                        .c_str()),
        0);
    return ReadFile(path("bundle.b64"));
  }

 private:
  TempDir dir_;
};

}  // namespace herald::test_support
