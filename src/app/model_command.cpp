#include "app/model_command.h"

#include <iostream>

#include <nlohmann/json.hpp>

#include "app/cache_admin.h"
#include "embed/static_embedder.h"

namespace semcached::app {
namespace {

Result<std::unique_ptr<embed::StaticEmbedder>> LoadModel(const Config& config,
                                                         const std::string& model) {
  auto where = ResolveStaticModel(config, model);
  if (!where.ok()) return where.status();
  auto files = where->empty() ? Result<embed::StaticModelFiles>(embed::DefaultStaticModel())
                              : embed::ReadStaticModelDir(*where);
  if (!files.ok()) return files.status();
  return embed::StaticEmbedder::Load(*files);
}

// Calls `each` per input text; false when a line is not what --json-lines promises.
template <typename Fn>
int ForEachText(const ModelTextOptions& options, Fn each) {
  std::string line;
  for (std::size_t n = 1; std::getline(std::cin, line); ++n) {
    if (!options.json_lines) {
      each(line);
      continue;
    }
    auto text = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (text.is_discarded() || !text.is_string()) {
      std::cerr << "semcached model: line " << n << " is not a JSON string\n";
      return 2;
    }
    each(text.get<std::string>());
  }
  return 0;
}

}  // namespace

int RunModelTokenize(const Config& config, const ModelTextOptions& options) {
  auto model = LoadModel(config, options.model);
  if (!model.ok()) {
    std::cerr << "semcached model: " << model.status().message() << "\n";
    return 2;
  }
  std::vector<std::int32_t> ids;
  return ForEachText(options, [&](const std::string& text) {
    ids.clear();
    (*model)->tokenizer().Encode(text, &ids);
    std::cout << nlohmann::json(ids).dump() << "\n";
  });
}

int RunModelEmbed(const Config& config, const ModelTextOptions& options) {
  auto model = LoadModel(config, options.model);
  if (!model.ok()) {
    std::cerr << "semcached model: " << model.status().message() << "\n";
    return 2;
  }
  return ForEachText(options, [&](const std::string& text) {
    auto v = (*model)->Embed(text);
    std::cout << (v.ok() ? nlohmann::json(*v).dump() : nlohmann::json(nullptr).dump()) << "\n";
  });
}

}  // namespace semcached::app
