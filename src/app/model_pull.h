// `semcached model pull OWNER/NAME[@REVISION]`: a static model from the Hugging Face hub.
//
// Asks the hub which files the revision holds (GET /api/models/OWNER/NAME/revision/REV
// ?blobs=true), downloads those a static model needs (configs, tokenizer.json, the
// safetensors weights, modules.json, the model card and licence) from
// /OWNER/NAME/resolve/REV/FILE into models_dir/OWNER/NAME/, with a progress bar on stderr.
// A cut transfer resumes from where it stopped (HTTP Range on FILE.part); every file is
// checked against the digest the hub states for it (sha256 for LFS files, the git blob sha1
// for the others) before it takes its name, so a finished directory is always complete and
// verified. The model is then loaded once, so a file the loader refuses fails the pull too.
// Must not: run a server or touch caches (that is embedder_model's job).
#pragma once

#include <string>

#include "app/config.h"

namespace semcached::app {

struct ModelPullOptions {
  std::string model;  // OWNER/NAME[@REVISION]
  std::string hub_url = "https://huggingface.co";
  std::string models_dir;  // empty: the configuration's (data_dir/models by default)
  bool progress = true;
  int attempts = 5;  // per file, resuming each time
};

// Exit codes: 0 pulled, 2 bad arguments or a model the hub does not have, 1 a download or
// verification failure.
int RunModelPull(const Config& config, const ModelPullOptions& options);

}  // namespace semcached::app
