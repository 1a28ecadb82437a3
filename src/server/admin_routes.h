// The admin API: create, list, describe and delete caches at run time.
//
//   POST   /v1/caches             {id, ...the keys of a [[caches]] table}   201 the cache
//   GET    /v1/caches                                                       200 {caches: [...]}
//   GET    /v1/caches/{cacheId}                                             200 the cache
//   DELETE /v1/caches/{cacheId}                                             204
//   POST   /v1/caches/{cacheId}/reembed  {embedder, embedder_model, ...}      202 started
//   GET    /v1/caches/{cacheId}/reembed                                     200 its progress
// Authorization: Bearer <admin_api_key>. Without a configured admin key the API answers 403.
// Creating, deleting and reembedding write files durably (and may reach Redis): those run on
// the worker pool; the others where the cache's own work runs.
// This file is HTTP only: what a cache is, and where its definition is kept, is the app's
// (app/cache_admin.h), passed in as handlers.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "server/router.h"

namespace semcached::server {

struct AdminHandlers {
  std::function<Result<nlohmann::json>(const nlohmann::json& body)> create;
  std::function<nlohmann::json()> list;
  std::function<Result<nlohmann::json>(const std::string& id)> describe;
  std::function<Status(const std::string& id)> remove;
  std::function<Result<nlohmann::json>(const std::string& id, const nlohmann::json& body)> reembed;
  std::function<Result<nlohmann::json>(const std::string& id)> reembed_status;
  // Whether cache `id`'s work may wait on the network (its routes then run off the I/O
  // threads); null: never.
  std::function<bool(const std::string& id)> may_block;
};

void AddAdminRoutes(Router& router, std::string admin_key, AdminHandlers handlers);

}  // namespace semcached::server
