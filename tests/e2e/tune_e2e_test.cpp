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

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
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
      Tune_({"--pairs", WriteFile(dir_, "pairs.csv", csv), "--json", "--target-false-hits", "0"});
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
      {"--pairs", WriteFile(dir_, "pairs.jsonl", jsonl), "--json", "--target-false-hits", "0"});
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
      {"--pairs", WriteFile(dir_, "pairs.tsv",
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
  auto bad_label = Tune_({"--pairs", WriteFile(dir_, "bad.csv", "q1,q2,label\nhi,hello,maybe\n")});
  EXPECT_EQ(bad_label.exit_code, 2);
  EXPECT_NE(bad_label.output.find("record 2: needs a label 0 or 1 in column 3"), std::string::npos)
      << bad_label.output;
  auto no_header = Tune_({"--pairs", WriteFile(dir_, "nohdr.csv", "hi,hello,1\n")});
  EXPECT_EQ(no_header.exit_code, 2);
  EXPECT_NE(no_header.output.find("must be a header"), std::string::npos) << no_header.output;
  auto bad_json = Tune_({"--pairs", WriteFile(dir_, "bad.jsonl", "{\"a\":\"hi\"}\n")});
  EXPECT_EQ(bad_json.exit_code, 2);
  EXPECT_NE(bad_json.output.find("line 1: needs two strings"), std::string::npos)
      << bad_json.output;
  auto unknown = Tune_({"nosuch", "--pairs", dir_.string() + "/bad.csv"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("no cache 'nosuch'"), std::string::npos) << unknown.output;
  auto target = Tune_({"--pairs", dir_.string() + "/bad.csv", "--target-false-hits", "2"});
  EXPECT_EQ(target.exit_code, 2);
}

}  // namespace
}  // namespace semcached::testing
