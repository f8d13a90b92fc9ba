// heraldctl, the binary, against a real heraldd (DESIGN §9): its commands, output forms,
// contexts and exit codes, run as a user or a script runs them.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/daemon.h"
#include "tests/testing/pki.h"
#include "tests/testing/receiver.h"
#include "tests/testing/temp_dir.h"

namespace {

using herald::test_support::Daemon;
using herald::test_support::ReceivedRequest;
using herald::test_support::Receiver;
using herald::test_support::TempDir;
using Answer = herald::test_support::Reply;

struct Ran {
  int exit = -1;
  std::string out, err;
};

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class HeraldctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>(std::vector<std::string>{
        "--listen", "127.0.0.1:0", "--allow-private-targets", "--api-key", "mgmt"});
    ASSERT_NE(daemon_->port(), 0) << daemon_->output();
    url_ = "http://127.0.0.1:" + std::to_string(daemon_->port());
  }
  void TearDown() override { EXPECT_EQ(daemon_->Stop(), 0); }

  // heraldctl with `args`, HERALD_URL and HERALD_API_KEY set (unless `env` says otherwise),
  // stdin from `input`, stdout and stderr kept; not a terminal, as in a script.
  Ran Ctl(const std::vector<std::string>& args, const std::string& input = "",
          const std::string& env = "") {
    const std::string in = dir_.path() + "/in", out = dir_.path() + "/out",
                      err = dir_.path() + "/err";
    std::ofstream(in) << input;
    std::string cmd = "HERALDCTL_CONFIG=" + Quote(dir_.path() + "/contexts.json") +
                      " HERALD_URL=" + Quote(url_) + " HERALD_API_KEY=mgmt " + env + " " +
                      Quote(HERALDCTL_PATH);
    for (const auto& a : args) cmd += " " + Quote(a);
    cmd += " <" + in + " >" + out + " 2>" + err;
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out), ReadFile(err)};
  }
  std::string File(const std::string& name, const std::string& text) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  TempDir dir_;
  std::unique_ptr<Daemon> daemon_;
  std::string url_;
};

TEST_F(HeraldctlTest, ManagesSubscriptionsAndSaysWhatWentWrongInItsExitCode) {
  Receiver receiver;
  auto r = Ctl({"profile", "create", "--data",
                R"({"profileId":"shop","webhook":{"notifyUrl":")" + receiver.url() + R"("}})"});
  ASSERT_EQ(r.exit, 0) << r.err;
  r = Ctl({"sub", "create", "SMS", "--data",
           "@" + File("sub.json", R"({"subscriptionId":"dlr","events":["DELIVERY"]})"), "--set",
           R"(profile={"profileId":"shop"})", "--set", "group=billing"});
  ASSERT_EQ(r.exit, 0) << r.err;
  r = Ctl({"sub", "ls", "SMS", "--json"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find(R"("subscriptionId":"dlr")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("group":"billing")"), std::string::npos) << r.out;
  r = Ctl({"sub", "ls", "-o", "table"});  // every channel, as a table
  EXPECT_NE(r.out.find("dlr"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("billing"), std::string::npos) << r.out;
  EXPECT_EQ(Ctl({"sub", "ls", "-o", "ids"}).out, "dlr\n");
  EXPECT_EQ(Ctl({"profile", "get", "shop", "--json"}).exit, 0);

  EXPECT_EQ(Ctl({"sub", "get", "SMS", "nope"}).exit, 3);
  r = Ctl({"sub", "create", "SMS", "--data",
           R"({"subscriptionId":"dlr","events":["DELIVERY"],"profile":{"profileId":"shop"}})"});
  EXPECT_EQ(r.exit, 5) << r.err;
  r = Ctl({"sub", "create", "SMS", "--set", "subscriptionId=x"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_NE(r.err.find("events: must not be null"), std::string::npos) << r.err;
  EXPECT_EQ(Ctl({"status"}, "", "HERALD_API_KEY=wrong").exit, 4);
  EXPECT_EQ(Ctl({"status", "--url", "http://127.0.0.1:1"}).exit, 7);
  EXPECT_EQ(Ctl({"sub", "frobnicate"}).exit, 2);
  EXPECT_EQ(Ctl({"status", "--output", "yaml"}).exit, 2);
  EXPECT_EQ(Ctl({"sub", "rm", "SMS", "dlr"}).exit, 0);
  EXPECT_EQ(Ctl({"sub", "rm", "SMS", "dlr"}).exit, 3);
}

TEST_F(HeraldctlTest, UploadsListsTestsAndRemovesClientCertificates) {
  const herald::test_support::Pki pki;
  const std::string pem = File(
      "client.pem", ReadFile(pki.path("client-encrypted.key")) + ReadFile(pki.path("client.pem")));
  auto r = Ctl({"cert", "upload", "shop-mtls", "--file", pem, "--passphrase-file",
                File("phrase", "s3cret\n")});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, R"({"certificateId":"shop-mtls","status":"READY"})"
                   "\n");
  r = Ctl({"cert", "upload", "bad", "--file", File("bad.pem", "not a certificate")});
  EXPECT_EQ(r.exit, 2);
  EXPECT_NE(r.err.find("holds no private key"), std::string::npos) << r.err;
  r = Ctl({"cert", "ls", "-o", "table"});
  EXPECT_NE(r.out.find("shop-mtls"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("READY"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CN=herald client"), std::string::npos) << r.out;
  EXPECT_EQ(Ctl({"cert", "get", "shop-mtls"}).out.find("PRIVATE"), std::string::npos);
  r = Ctl({"cert", "test", "shop-mtls", "https://127.0.0.1:1/hook", "-o", "table"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.out.find("FAIL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("connect to 127.0.0.1:1"), std::string::npos) << r.out;
  EXPECT_EQ(Ctl({"cert", "rm", "shop-mtls"}).exit, 0);
  EXPECT_EQ(Ctl({"cert", "rm", "shop-mtls"}).exit, 3);
}

TEST_F(HeraldctlTest, ContextsAreTheUsersAloneAndFlagsWinOverThem) {
  Ran r = Ctl({"context", "add", "local", "--url", url_, "--key", "mgmt"}, "", "HERALD_URL=");
  ASSERT_EQ(r.exit, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(::stat((dir_.path() + "/contexts.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The context (current since it is the first) is used without any flag or variable.
  r = Ctl({"status", "--json"}, "", "HERALD_URL= HERALD_API_KEY=");
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find(R"("counters")"), std::string::npos);
  // A flag beats the context; the environment beats it too.
  EXPECT_EQ(Ctl({"status", "--url", "http://127.0.0.1:1"}, "", "HERALD_URL=").exit, 7);
  EXPECT_EQ(Ctl({"status"}, "", "HERALD_URL= HERALD_API_KEY=wrong").exit, 4);
  EXPECT_EQ(Ctl({"status"}, "", "HERALD_URL= HERALD_API_KEY= HERALD_CONTEXT=other").exit, 2);
  r = Ctl({"context", "ls", "--json"});
  EXPECT_NE(r.out.find(R"("name":"local")"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"mgmt\""), std::string::npos) << "the key is masked: " << r.out;
  EXPECT_EQ(Ctl({"context", "rm", "local"}).exit, 0);
  EXPECT_EQ(Ctl({"context", "use", "local"}).exit, 3);
}

TEST_F(HeraldctlTest, SendsExamplePayloadsThatListenVerifiesAndExplainsRoutes) {
  // listen points a new profile with a new secret at itself, subscribes it, and verifies what
  // heraldd signs.
  const std::string out = dir_.path() + "/listen.out", err = dir_.path() + "/listen.err";
  const std::string cmd = "HERALDCTL_CONFIG=/dev/null/none HERALD_URL=" + Quote(url_) +
                          " HERALD_API_KEY=mgmt " + Quote(HERALDCTL_PATH) +
                          " listen --json --create-profile mine --subscribe SMS:DELIVERY --max 2"
                          " >" +
                          out + " 2>" + err + " & echo $!";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char pid[32] = {};
  ASSERT_NE(std::fgets(pid, sizeof pid, p), nullptr);
  ::pclose(p);
  for (int i = 0; i < 500 && ReadFile(err).find("listening on") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_NE(ReadFile(err).find("listening on"), std::string::npos) << ReadFile(err);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // the index publishes

  Ran r = Ctl({"send", "SMS", "DELIVERY", "--set", "eventId=e-1", "--set", "applicationId=shop"});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find(R"("accepted":1)"), std::string::npos) << r.out;
  r = Ctl({"send", "SMS", "DELIVERY", "--data", R"({"eventId":"e-2","payload":{"mine":true}})"});
  EXPECT_EQ(r.exit, 0) << r.err;
  for (int i = 0; i < 500 && ReadFile(out).find("e-2") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string got = ReadFile(out);
  EXPECT_NE(got.find(R"("webhookId":"e-1","timestamp")"), std::string::npos) << got;
  EXPECT_NE(got.find(R"("signature":"valid")"), std::string::npos) << got;
  EXPECT_EQ(got.find("INVALID"), std::string::npos) << got;
  // The first carried the catalog's example delivery report; the second its own payload.
  EXPECT_NE(got.find("DELIVERED_TO_HANDSET"), std::string::npos) << got;
  EXPECT_NE(got.find(R"({\"mine\":true})"), std::string::npos) << got;
  std::system(("kill " + std::string(pid) + " 2>/dev/null").c_str());

  r = Ctl({"explain", "SMS", "DELIVERY", "--json"});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find(R"("subscriptionId":"mine-SMS")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("winner":true)"), std::string::npos) << r.out;
  r = Ctl({"explain", "SMS", "DELIVERY", "-o", "table"});
  EXPECT_NE(r.out.find("notified: mine"), std::string::npos) << r.out;
  EXPECT_EQ(Ctl({"send", "SMS", "NOPE"}).exit, 3);
  EXPECT_EQ(Ctl({"send", "SMS", "DELIVERY", "--data", "[1]"}).exit, 2);
  // Several at a rate: counted, and every one accepted.
  r = Ctl({"send", "SMS", "DELIVERY", "--count", "20", "--rate", "100", "--json"});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find(R"("accepted":20)"), std::string::npos) << r.out;
  // The deliveries, and the once-only top without a terminal.
  r = Ctl({"deliveries", "ls", "--profile", "mine", "--json"});
  EXPECT_NE(r.out.find(R"("webhookId":"e-1")"), std::string::npos) << r.out;
  r = Ctl({"top", "-o", "table"});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find("mine"), std::string::npos) << r.out;
}

TEST_F(HeraldctlTest, ImportsWithLineErrorsExportsWhatImportReadsBackAndDryRuns) {
  Receiver receiver;
  ASSERT_EQ(Ctl({"profile", "create", "--data",
                 R"({"profileId":"p","webhook":{"notifyUrl":")" + receiver.url() + R"("}})"})
                .exit,
            0);
  std::string ndjson;
  for (int i = 1; i <= 2500; ++i) {
    if (i == 1000) {
      ndjson += "not json\n";
    } else if (i == 2001) {
      ndjson +=
          R"({"subscriptionId":"bad","channel":"SMS","events":["NOPE"],"profile":{"profileId":"p"}})"
          "\n";
    } else {
      ndjson += R"({"subscriptionId":"s)" + std::to_string(i) +
                R"(","channel":"SMS","events":["DELIVERY"],"profile":{"profileId":"p"}})"
                "\n";
    }
  }
  const std::string file = File("subs.ndjson", ndjson);
  Ran r = Ctl({"import", file, "--dry-run", "--json"});
  EXPECT_EQ(r.exit, 6) << r.err;
  EXPECT_NE(r.out.find(R"("valid":2498,"failed":2)"), std::string::npos) << r.out;
  EXPECT_EQ(Ctl({"sub", "ls", "SMS", "-o", "ids"}).out, "");  // a dry run imports nothing
  r = Ctl({"import", file, "--batch", "300", "--json"});
  EXPECT_EQ(r.exit, 6) << r.err;
  EXPECT_NE(r.out.find(R"("imported":2498,"failed":2)"), std::string::npos) << r.out;
  // Line numbers count from the file's start, across batches.
  EXPECT_NE(r.out.find(R"({"line":1000,)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"({"line":2001,)"), std::string::npos) << r.out;
  // From stdin too.
  r = Ctl({"import", "-"},
          R"({"subscriptionId":"piped","channel":"SMS","events":[],"profile":{"profileId":"p"}})"
          "\n");
  EXPECT_EQ(r.exit, 0) << r.err;

  r = Ctl({"export"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2499);
  // What export writes, import takes back (here: into the same ids, so every line conflicts).
  r = Ctl({"import", File("exported.ndjson", r.out), "--json"});
  EXPECT_EQ(r.exit, 2) << r.out;
  EXPECT_NE(r.out.find(R"("imported":0,"failed":2499)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("already exists"), std::string::npos) << r.out.substr(0, 300);
}

TEST_F(HeraldctlTest, ReplayingDeadLettersAsksAndWantsYesWithoutATerminal) {
  Receiver receiver;
  std::atomic<int> status{400};
  receiver.set_handler([&](const ReceivedRequest&) { return Answer{.status = status.load()}; });
  ASSERT_EQ(Ctl({"sub", "create", "SMS", "--data",
                 R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"rx",)"
                 R"("webhook":{"notifyUrl":")" +
                     receiver.url() + R"("}}})"})
                .exit,
            0);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_EQ(Ctl({"send", "SMS", "DELIVERY", "--set", "eventId=lost-1"}).exit, 0);
  Ran r;
  for (int i = 0; i < 200; ++i) {
    r = Ctl({"dlq", "ls", "-o", "ids"});
    if (r.out == "1\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(r.out, "1\n") << r.err;
  r = Ctl({"dlq", "show", "1", "--json"});
  EXPECT_NE(r.out.find(R"("webhookId":"lost-1")"), std::string::npos) << r.out;
  r = Ctl({"status", "-o", "table"});
  EXPECT_NE(r.out.find("dead letters 1"), std::string::npos) << r.out;
  r = Ctl({"dlq", "replay", "--profile", "rx"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_NE(r.err.find("add --yes"), std::string::npos) << r.err;
  status = 200;
  r = Ctl({"dlq", "replay", "--profile", "rx", "--yes", "--json"});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "{\"replayed\":1}\n");
  ASSERT_TRUE(receiver.WaitFor(2, std::chrono::seconds(10)));
  EXPECT_EQ(receiver.requests()[1].header("webhook-id"), "lost-1");
}

TEST_F(HeraldctlTest, TailShowsDeliveriesAsTheyHappen) {
  Receiver receiver;
  ASSERT_EQ(Ctl({"sub", "create", "SMS", "--data",
                 R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"rx",)"
                 R"("webhook":{"notifyUrl":")" +
                     receiver.url() + R"("}}})"})
                .exit,
            0);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  std::thread sender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    Ctl({"send", "SMS", "DELIVERY", "--set", "eventId=tailed"});
  });
  // Until it is stopped: here by timeout(1), as by Ctrl-C.
  const std::string cmd = "HERALD_URL=" + Quote(url_) + " HERALD_API_KEY=mgmt timeout 3 " +
                          Quote(HERALDCTL_PATH) + " tail --json";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string lines;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) lines += buf;
  ::pclose(p);
  sender.join();
  EXPECT_NE(lines.find(R"("webhookId":"tailed")"), std::string::npos) << lines;
}

TEST_F(HeraldctlTest, SignsAndVerifiesAndCompletes) {
  Ran r =
      Ctl({"sign", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "--id",
           "msg_p5jXN8AQM9LWM0D4loKWxJek", "--timestamp", "1614265330", R"({"test": 2432232314})"});
  ASSERT_EQ(r.exit, 0) << r.err;
  // Standard Webhooks' own example: this secret, id, timestamp and body give this signature.
  EXPECT_NE(r.out.find("webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
            std::string::npos)
      << r.out;
  const std::vector<std::string> verify = {
      "verify",
      "--secret",
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      "--id",
      "msg_p5jXN8AQM9LWM0D4loKWxJek",
      "--timestamp",
      "1614265330",
      "--signature",
      "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="};
  auto with_body = [&](const std::string& body) {
    auto args = verify;
    args.push_back(body);
    return args;
  };
  EXPECT_EQ(Ctl(with_body(R"({"test": 2432232314})")).exit, 0);
  EXPECT_EQ(Ctl(with_body(R"({"test": 2432232315})")).exit, 1);
  r = Ctl({"completion", "bash"});
  EXPECT_NE(r.out.find("complete -F _heraldctl heraldctl"), std::string::npos);
  EXPECT_NE(r.out.find("\"dlq\") words=\"ls show replay rm\""), std::string::npos) << r.out;
}

}  // namespace
