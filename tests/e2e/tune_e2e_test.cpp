// `semcached tune --pairs`: the threshold report a user runs before going live, on pair files
// in the formats it reads, through the real binary.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace semcached::testing {
namespace {

struct PairRow {
  const char* stored;
  const char* asked;
  int same;
};

// Questions a support desk gets: rewordings of one question, and near misses that ask another.
const PairRow kPairs[] = {
    {"How do I reset my router password?", "how can I reset the password of my router", 1},
    {"What are your opening hours on Saturday?", "When are you open on Saturday?", 1},
    {"How do I cancel my subscription?", "How can I cancel my subscription?", 1},
    {"Can I get a refund for a damaged item?", "Can I get my money back for a damaged item?", 1},
    {"I need 3 tickets for the show", "I need 4 tickets for the show", 0},
    {"Is the pool heated?", "Is the pool not heated?", 0},
    {"How do I upload photos to my account?", "How do I download photos from my account?", 0},
    {"What is the weather in Paris today?", "What is the weather in Paris tomorrow?", 0},
};

std::string WritePairs(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

nlohmann::json LastJsonLine(const std::string& output) {
  const std::size_t at = output.rfind("\n{");
  return nlohmann::json::parse(output.substr(at == std::string::npos ? 0 : at + 1), nullptr, false);
}

class Tune : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("semcached-tune-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  CommandResult Tune_(std::vector<std::string> args) {
    std::vector<std::string> argv = {SemcachedServer::BinaryPath(), "tune", "--no-progress",
                                     "--data-dir", dir_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  std::filesystem::path dir_;
};

TEST_F(Tune, ReportsEachThresholdAndRecommendsOne) {
  std::string csv = "question1,question2,is_duplicate\n", jsonl;
  for (const auto& p : kPairs) {
    csv += std::string("\"") + p.stored + "\",\"" + p.asked + "\"," + std::to_string(p.same) + "\n";
    jsonl += nlohmann::json{{"a", p.stored}, {"b", p.asked}, {"same", p.same == 1}}.dump() + "\n";
  }
  auto from_csv =
      Tune_({"--pairs", WritePairs(dir_, "pairs.csv", csv), "--json", "--target-false-hits", "0"});
  ASSERT_EQ(from_csv.exit_code, 0) << from_csv.output;
  const auto report = LastJsonLine(from_csv.output);
  ASSERT_TRUE(report.is_object()) << from_csv.output;
  EXPECT_EQ(report["same"], 4);
  EXPECT_EQ(report["different"], 4);
  // The numbers, the negation and the date differ: the guards refuse those whatever the
  // similarity; upload/download are opposites.
  EXPECT_EQ(report["refusedByGuards"]["different"], 4);
  EXPECT_EQ(report["refusedByGuards"]["same"], 0);
  EXPECT_EQ(report["thresholds"].size(), 51u);  // 0.50 .. 1.00
  ASSERT_TRUE(report["recommended"].is_object());
  EXPECT_EQ(report["recommended"]["falseHits"], 0);
  EXPECT_EQ(report["recommended"]["hits"], 4);  // every rewording, at the lowest threshold
  EXPECT_DOUBLE_EQ(report["recommended"]["threshold"].get<double>(), 0.5);

  // The same pairs as JSON lines give the same report.
  auto from_jsonl = Tune_(
      {"--pairs", WritePairs(dir_, "pairs.jsonl", jsonl), "--json", "--target-false-hits", "0"});
  ASSERT_EQ(from_jsonl.exit_code, 0) << from_jsonl.output;
  EXPECT_EQ(LastJsonLine(from_jsonl.output), report);

  // The table for a terminal says what it recommends.
  auto text = Tune_({"--pairs", dir_.string() + "/pairs.csv"});
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("recommended: similarity_threshold = 0.500"), std::string::npos)
      << text.output;
  EXPECT_NE(text.output.find("label 1 = same question"), std::string::npos);
}

TEST_F(Tune, ReadsWhatALabelMeansFromTheHeader) {
  // The CANNOT layout: label 1 says the two are not equivalent.
  auto r = Tune_(
      {"--pairs", WritePairs(dir_, "pairs.tsv",
                             "premise\thypothesis\tlabel\nThe store is open.\tThe store is not "
                             "open.\t1\nThe store is open.\tThe shop is open.\t0\n")});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("label 1 = different question"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 lookups that should be served, 1 that should not"), std::string::npos)
      << r.output;
}

TEST_F(Tune, BadFilesAreClearErrors) {
  auto missing = Tune_({"--pairs", dir_.string() + "/none.csv"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("cannot read"), std::string::npos) << missing.output;
  auto bad_label = Tune_({"--pairs", WritePairs(dir_, "bad.csv", "q1,q2,label\nhi,hello,maybe\n")});
  EXPECT_EQ(bad_label.exit_code, 2);
  EXPECT_NE(bad_label.output.find("record 2: needs a label 0 or 1 in column 3"), std::string::npos)
      << bad_label.output;
  auto no_header = Tune_({"--pairs", WritePairs(dir_, "nohdr.csv", "hi,hello,1\n")});
  EXPECT_EQ(no_header.exit_code, 2);
  EXPECT_NE(no_header.output.find("must be a header"), std::string::npos) << no_header.output;
  auto bad_json = Tune_({"--pairs", WritePairs(dir_, "bad.jsonl", "{\"a\":\"hi\"}\n")});
  EXPECT_EQ(bad_json.exit_code, 2);
  EXPECT_NE(bad_json.output.find("line 1: needs two strings"), std::string::npos)
      << bad_json.output;
  auto unknown = Tune_({"nosuch", "--pairs", dir_.string() + "/bad.csv"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("no cache 'nosuch'"), std::string::npos) << unknown.output;
  auto target = Tune_({"--pairs", dir_.string() + "/bad.csv", "--target-false-hits", "2"});
  EXPECT_EQ(target.exit_code, 2);
}

// Feedback through HTTP: labels on an entry's answer feed GET /tuning; a wrong label can
// delete the entry; bad bodies, unknown entries and missing keys are clear errors.
TEST(FeedbackE2E, LabelsFeedTheTuningRouteAndMayDeleteTheEntry) {
  TempDir dir;
  const std::string config = dir.File("semcached.toml");
  WriteFile(config,
            "[[caches]]\nid = \"faq\"\napi_keys = [\"k1\"]\nfeedback_deletes_wrong = true\n");
  SemcachedServer server({"--config", config}, {}, dir.File("data"));
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer k1"},
                                                   {"Content-Type", "application/json"}};
  auto store = [&](const std::string& prompt) {
    auto r =
        HttpRequestOnce(server.port(), "POST", "/v1/caches/faq/entries",
                        nlohmann::json{{"prompt", prompt}, {"response", "an answer"}}.dump(), auth);
    EXPECT_TRUE(r && r->status == 201);
    return r ? nlohmann::json::parse(r->body)["entryId"].get<std::string>() : std::string();
  };
  const std::string router = store("How do I reset my router password?");
  const std::string hours = store("What are your opening hours on Saturday?");
  auto feedback = [&](const std::string& id, const nlohmann::json& body) {
    return HttpRequestOnce(server.port(), "POST", "/v1/caches/faq/entries/" + id + "/feedback",
                           body.dump(), auth);
  };
  auto right = feedback(
      router, {{"prompt", "how can I reset the password of my router"}, {"correct", true}});
  ASSERT_TRUE(right && right->status == 200) << (right ? right->body : "no reply");
  auto rj = nlohmann::json::parse(right->body);
  EXPECT_EQ(rj["correct"], true);
  EXPECT_EQ(rj["deleted"], false);
  EXPECT_GT(rj["similarityCosine"].get<double>(), 0.8);
  EXPECT_NEAR(rj["similarity"].get<double>(), (1 + rj["similarityCosine"].get<double>()) / 2, 1e-6);
  auto wrong =
      feedback(hours, {{"prompt", "What are your opening hours on Sunday?"}, {"correct", false}});
  ASSERT_TRUE(wrong && wrong->status == 200) << (wrong ? wrong->body : "no reply");
  EXPECT_EQ(nlohmann::json::parse(wrong->body)["deleted"], true);
  // Deleted: the next search does not serve it, and more feedback on it is a 404.
  auto gone = HttpRequestOnce(server.port(), "POST", "/v1/caches/faq/entries/search",
                              R"({"prompt":"What are your opening hours on Saturday?"})", auth);
  ASSERT_TRUE(gone && gone->status == 200);
  EXPECT_EQ(nlohmann::json::parse(gone->body)["data"].size(), 0u);
  auto unknown = feedback(hours, {{"prompt", "What are your hours?"}, {"correct", true}});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);

  auto tuning =
      HttpRequestOnce(server.port(), "GET", "/v1/caches/faq/tuning?targetFalseHitRate=0", "", auth);
  ASSERT_TRUE(tuning && tuning->status == 200) << (tuning ? tuning->body : "no reply");
  auto tj = nlohmann::json::parse(tuning->body);
  EXPECT_EQ(tj["same"], 1);
  EXPECT_EQ(tj["different"], 1);
  EXPECT_EQ(tj["targetFalseHitRate"], 0.0);
  EXPECT_EQ(tj["thresholds"].size(), 51u);
  // The lookups so far: one search found nothing (the deleted entry's question asked again,
  // its best candidate the router entry); the share each threshold would serve.
  EXPECT_GE(tj["lookups"].get<int>(), 1);
  EXPECT_EQ(tj["thresholds"][0]["servedShare"].is_number(), true);
  // `semcached tune CACHE` asks the running server for the same report.
  auto cli = RunCommand({SemcachedServer::BinaryPath(), "tune", "faq", "--url",
                         "http://127.0.0.1:" + std::to_string(server.port()), "--api-key", "k1",
                         "--target-false-hits", "0", "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  const auto from_cli = LastJsonLine(cli.output);
  EXPECT_EQ(from_cli["same"], 1);
  EXPECT_EQ(from_cli["different"], 1);
  auto cli_text =
      RunCommand({SemcachedServer::BinaryPath(), "tune", "faq", "--url",
                  "http://127.0.0.1:" + std::to_string(server.port()), "--api-key", "k1"});
  ASSERT_EQ(cli_text.exit_code, 0) << cli_text.output;
  EXPECT_NE(cli_text.output.find("traffic served"), std::string::npos) << cli_text.output;
  auto cli_unknown =
      RunCommand({SemcachedServer::BinaryPath(), "tune", "nope", "--url",
                  "http://127.0.0.1:" + std::to_string(server.port()), "--api-key", "k1"});
  EXPECT_NE(cli_unknown.exit_code, 0);
  auto stats = HttpRequestOnce(server.port(), "GET", "/v1/caches/faq/stats", "", auth);
  ASSERT_TRUE(stats && stats->status == 200);
  EXPECT_EQ(nlohmann::json::parse(stats->body)["feedbackCorrect"], 1);
  EXPECT_EQ(nlohmann::json::parse(stats->body)["feedbackWrong"], 1);

  // A search may ask for shadow mode: nothing served, what would have been in the headers.
  auto shadowed = HttpRequestOnce(server.port(), "POST", "/v1/caches/faq/entries/search",
                                  R"({"prompt":"How do I reset my router password?"})",
                                  {{"Authorization", "Bearer k1"},
                                   {"Content-Type", "application/json"},
                                   {"X-Semcached-Mode", "shadow"}});
  ASSERT_TRUE(shadowed && shadowed->status == 200);
  EXPECT_EQ(nlohmann::json::parse(shadowed->body)["data"].size(), 0u);
  EXPECT_EQ(shadowed->headers["x-semcached-tier"], "miss");
  EXPECT_EQ(shadowed->headers["x-semcached-withheld"], "shadow");
  EXPECT_EQ(shadowed->headers["x-semcached-withheld-tier"], "exact");
  EXPECT_EQ(shadowed->headers["x-semcached-withheld-entry-id"], router);

  // Bad bodies name the field; the route is behind the cache's keys.
  auto no_label = feedback(router, {{"prompt", "reset my router"}});
  ASSERT_TRUE(no_label);
  EXPECT_EQ(no_label->status, 400);
  EXPECT_NE(no_label->body.find("\"correct\""), std::string::npos) << no_label->body;
  auto not_bool = feedback(router, {{"prompt", "reset my router"}, {"correct", "yes"}});
  ASSERT_TRUE(not_bool);
  EXPECT_EQ(not_bool->status, 400);
  auto no_prompt = feedback(router, {{"correct", true}});
  ASSERT_TRUE(no_prompt);
  EXPECT_EQ(no_prompt->status, 400);
  auto bad_target =
      HttpRequestOnce(server.port(), "GET", "/v1/caches/faq/tuning?targetFalseHitRate=2", "", auth);
  ASSERT_TRUE(bad_target);
  EXPECT_EQ(bad_target->status, 400);
  auto anonymous =
      HttpRequestOnce(server.port(), "POST", "/v1/caches/faq/entries/" + router + "/feedback",
                      R"({"prompt":"x","correct":true})", {{"Content-Type", "application/json"}});
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
}

}  // namespace
}  // namespace semcached::testing
