/*
** azb_pooldesc.c: descriptors for the pool request bodies of contract
** 2025-06-01 (BatchPoolCreateOptions and everything outside the VM and
** network configurations, the update/replace/resize/autoscale/removenodes
** bodies) and the table of kinds core.validate knows. Fields are in the
** contract's property order, which is also the JSON key order.
*/
#include <string.h>

#include "azb_schema.h"

#define MINUTES(n)  ((double)(n) * 60.0)
#define HOURS(n)    ((double)(n) * 3600.0)
#define DEFAULT_RESIZE_TIMEOUT  MINUTES(15)


/*
** {======================================================
** Enums
** =======================================================
*/

static const char *const E_workdir[] = {"taskWorkingDirectory",
                                        "containerImageDefault", NULL};
static const char *const E_hostpath[] = {"Shared", "Startup", "VfsMounts", "Task",
                                         "JobPrep", "Applications", NULL};
static const char *const E_scope[] = {"task", "pool", NULL};
static const char *const E_order[] = {"none", "creationtime", NULL};
static const char *const E_fill[] = {"spread", "pack", NULL};
static const char *const E_login[] = {"batch", "interactive", NULL};
static const char *const E_upgrade[] = {"automatic", "manual", "rolling", NULL};
static const char *const E_dealloc[] = {"requeue", "terminate", "taskcompletion",
                                        "retaineddata", NULL};

/* }====================================================== */


/*
** {======================================================
** Scalar checks
** =======================================================
*/

static const char *tostr(azb_vctx *v, int idx, size_t *len) {
  return lua_tolstring(v->L, idx, len);
}

static int check_pool_id(azb_vctx *v, int idx) {
  size_t len, i;
  const char *s = tostr(v, idx, &len);
  for (i = 0; i < len; i++)
    if (!azb_isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
      break;
  if (len >= 1 && len <= 64 && i == len)
    return 1;
  azb_verror(v, "must be 1 to 64 letters, digits, '-' or '_'");
  return 0;
}

static int check_nonempty(azb_vctx *v, int idx) {
  if (lua_rawlen(v->L, idx) > 0)
    return 1;
  azb_verror(v, "must not be empty");
  return 0;
}

static const char *const S_application[] = {
  "subscriptions", "*", "resourceGroups", "*", "providers", "Microsoft.Batch",
  "batchAccounts", "*", "applications", "*", NULL};

/* "When creating a pool, the package's application ID must be fully qualified" */
static int check_application_id(azb_vctx *v, int idx) {
  return azb_sch_shape(v, idx, S_application, "/subscriptions/{subscription}/"
    "resourceGroups/{group}/providers/Microsoft.Batch/batchAccounts/{account}/"
    "applications/{application}");
}

static int check_file_mode(azb_vctx *v, int idx) {
  size_t len, i;
  const char *s = tostr(v, idx, &len);
  for (i = 0; i < len && s[i] >= '0' && s[i] <= '7'; i++)
    ;
  if (i == len && len >= 3 && len <= 4)
    return 1;
  azb_verror(v, "must be an octal mode such as '0770'");
  return 0;
}

/* "The specified relative path cannot break out of the Task's working
** directory (for example by using '..')" */
static int check_file_path(azb_vctx *v, int idx) {
  size_t len, i, start = 0;
  const char *s = tostr(v, idx, &len);
  for (i = 0; i <= len; i++) {
    if (i == len || s[i] == '/' || s[i] == '\\') {
      if (i - start == 2 && s[start] == '.' && s[start + 1] == '.') {
        azb_verror(v, "must not leave the task working directory ('..')");
        return 0;
      }
      start = i + 1;
    }
  }
  return 1;
}

static int check_https(azb_vctx *v, int idx) {
  size_t len;
  const char *s = tostr(v, idx, &len);
  if (len > 8 && azb_strnieq(s, "https://", 8))
    return 1;
  azb_verror(v, "expected https://{account}.file.core.windows.net/..., got %s",
             azb_text_pushquoted(v->L, s, len, '\''));
  lua_pop(v->L, 1);
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Rule helpers
** =======================================================
*/

/* Exactly one of keys present in src; 'what' names them for the message. */
static void exactly_one(azb_vctx *v, int src, const char *const *keys,
                        const char *what) {
  int n = 0;
  for (int i = 0; keys[i] != NULL; i++)
    n += azb_sch_has(v->L, src, keys[i]);
  if (n == 0)
    azb_vmissing(v, "one of %s is required", what);
  else if (n > 1)
    azb_verror(v, "%s are mutually exclusive: set exactly one", what);
}

/*
** Fixed-size sizing advice: resizeTimeout of 15 minutes per 1000 VMs,
** one gallery replica per 600 VMs (the seed documents' rules).
*/
static void sizing_warnings(azb_vctx *v, int copy, int vmconfig) {
  lua_State *L = v->L;
  lua_Integer d = 0, l = 0, n;
  double cur = DEFAULT_RESIZE_TIMEOUT, rec;
  const char *rt = azb_sch_getstr(L, copy, "resizeTimeout");
  char a[48], b[48];
  azb_sch_getint(L, copy, "targetDedicatedNodes", &d);
  azb_sch_getint(L, copy, "targetLowPriorityNodes", &l);
  n = d + l;
  if (rt != NULL && azb_duration_parse(rt, strlen(rt), &cur) != NULL)
    return;   /* already reported */
  rec = azb_plan_resize_timeout(n);
  if (cur < rec) {
    azb_duration_format(cur, a, sizeof a);
    azb_duration_format(rec, b, sizeof b);
    azb_path_key(v, "resizeTimeout");
    azb_vwarn(v, b, "%s is below the %s recommended for %I VMs "
              "(15 minutes per 1000 VMs)", a, b, (LUAI_UACINT)n);
    azb_path_pop(v);
  }
  if (!vmconfig || n <= 600)
    return;
  if (azb_sch_push(L, copy, "virtualMachineConfiguration", "imageReference",
                   "virtualMachineImageId", NULL) == LUA_TSTRING) {
    lua_Integer r = azb_plan_replicas(n);
    const char *recommended = lua_pushfstring(L, "%I replicas", (LUAI_UACINT)r);
    azb_path_key(v, "virtualMachineConfiguration");
    azb_path_key(v, "imageReference");
    azb_path_key(v, "virtualMachineImageId");
    azb_vwarn(v, recommended, "a pool of %I VMs needs at least %I replicas of "
              "the image in the Batch account's region (1 per 600 VMs)",
              (LUAI_UACINT)n, (LUAI_UACINT)r);
    azb_path_pop(v);
    azb_path_pop(v);
    azb_path_pop(v);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* }====================================================== */


/*
** {======================================================
** Start task
** =======================================================
*/

static const azb_field F_ContainerHostBatchBindMountEntry[] = {
  F_ENUM("source", 0, E_hostpath),
  F_BOOL("isReadOnly", 0),
};
static const azb_object ContainerHostBatchBindMountEntry =
  AZB_OBJECT("ContainerHostBatchBindMountEntry",
             F_ContainerHostBatchBindMountEntry, NULL);

static const azb_field F_BatchTaskContainerSettings[] = {
  F_STR("containerRunOptions", 0),
  F_STRN("imageName", AZB_REQUIRED, 1, 0, NULL),
  F_OBJ("registry", 0, azb_ContainerRegistryReference),
  F_ENUM("workingDirectory", 0, E_workdir),
  F_ARR("containerHostBatchBindMounts", 0, ContainerHostBatchBindMountEntry, 0, 0),
};
static const azb_object BatchTaskContainerSettings =
  AZB_OBJECT("BatchTaskContainerSettings", F_BatchTaskContainerSettings, NULL);

static const azb_field F_BatchTaskContainerSettingsUpdate[] = {
  F_STR("containerRunOptions", 0),
  F_STRN("imageName", 0, 1, 0, NULL),
  F_OBJ("registry", 0, azb_ContainerRegistryReference),
  F_ENUM("workingDirectory", 0, E_workdir),
  F_ARR("containerHostBatchBindMounts", 0, ContainerHostBatchBindMountEntry, 0, 0),
};
static const azb_object BatchTaskContainerSettingsUpdate =
  AZB_OBJECT("BatchTaskContainerSettingsUpdate",
             F_BatchTaskContainerSettingsUpdate, NULL);

static const char *const K_sources[] = {"autoStorageContainerName",
                                        "storageContainerUrl", "httpUrl", NULL};

static void resource_file_rule(azb_vctx *v, int src, int copy) {
  (void)copy;
  exactly_one(v, src, K_sources,
              "autoStorageContainerName, storageContainerUrl, httpUrl");
  if (azb_sch_has(v->L, src, "httpUrl")) {
    if (!azb_sch_has(v->L, src, "filePath"))
      azb_vmissing_at(v, "filePath", "required when httpUrl is set");
    if (azb_sch_has(v->L, src, "blobPrefix"))
      azb_verror_at(v, "blobPrefix", "valid only with autoStorageContainerName "
                    "or storageContainerUrl");
  }
}

/* URLs often carry a SAS token: never echoed */
static const azb_field F_ResourceFile[] = {
  F_STRN("autoStorageContainerName", 0, 1, 0, NULL),
  F_STRN("storageContainerUrl", AZB_SECRET, 1, 0, NULL),
  F_STRN("httpUrl", AZB_SECRET, 1, 0, NULL),
  F_STR("blobPrefix", 0),
  F_STRN("filePath", 0, 0, 0, check_file_path),
  F_STRN("fileMode", 0, 0, 0, check_file_mode),
  F_OBJ("identityReference", 0, azb_BatchNodeIdentityReference),
};
static const azb_object ResourceFile =
  AZB_OBJECT("ResourceFile", F_ResourceFile, resource_file_rule);

static const azb_field F_EnvironmentSetting[] = {
  F_STRN("name", AZB_REQUIRED, 1, 0, NULL),
  F_STR("value", 0),
};
static const azb_object EnvironmentSetting =
  AZB_OBJECT("EnvironmentSetting", F_EnvironmentSetting, NULL);

static const azb_field F_AutoUserSpecification[] = {
  F_ENUM("scope", 0, E_scope),
  F_ENUM("elevationLevel", 0, azb_E_ElevationLevel),
};
static const azb_object AutoUserSpecification =
  AZB_OBJECT("AutoUserSpecification", F_AutoUserSpecification, NULL);

static const char *const K_identity[] = {"username", "autoUser", NULL};

static void user_identity_rule(azb_vctx *v, int src, int copy) {
  (void)copy;
  exactly_one(v, src, K_identity, "username, autoUser");
}

static const azb_field F_UserIdentity[] = {
  F_STRN("username", 0, 1, 0, NULL),
  F_OBJ("autoUser", 0, AutoUserSpecification),
};
static const azb_object UserIdentity =
  AZB_OBJECT("UserIdentity", F_UserIdentity, user_identity_rule);

static const azb_field F_BatchStartTask[] = {
  F_STRN("commandLine", AZB_REQUIRED, 1, 0, NULL),
  F_OBJ("containerSettings", 0, BatchTaskContainerSettings),
  F_ARR("resourceFiles", 0, ResourceFile, 0, 0),
  F_ARR("environmentSettings", 0, EnvironmentSetting, 0, 0),
  F_OBJ("userIdentity", 0, UserIdentity),
  F_INT("maxTaskRetryCount", 0, -1, AZB_INT32_MAX),
  F_BOOL("waitForSuccess", 0),
};
static const azb_object BatchStartTask =
  AZB_OBJECT("BatchStartTask", F_BatchStartTask, NULL);

static const azb_field F_BatchStartTaskUpdate[] = {
  F_STRN("commandLine", 0, 1, 0, NULL),
  F_OBJ("containerSettings", 0, BatchTaskContainerSettingsUpdate),
  F_ARR("resourceFiles", 0, ResourceFile, 0, 0),
  F_ARR("environmentSettings", 0, EnvironmentSetting, 0, 0),
  F_OBJ("userIdentity", 0, UserIdentity),
  F_INT("maxTaskRetryCount", 0, -1, AZB_INT32_MAX),
  F_BOOL("waitForSuccess", 0),
};
static const azb_object BatchStartTaskUpdate =
  AZB_OBJECT("BatchStartTaskUpdate", F_BatchStartTaskUpdate, NULL);

/* }====================================================== */


/*
** {======================================================
** Packages, scheduling, users, metadata
** =======================================================
*/

static const azb_field F_BatchApplicationPackageReferenceCreate[] = {
  F_STRN("applicationId", AZB_REQUIRED, 1, 0, check_application_id),
  F_STR("version", 0),
};
static const azb_object BatchApplicationPackageReferenceCreate =
  AZB_OBJECT("BatchApplicationPackageReference",
             F_BatchApplicationPackageReferenceCreate, NULL);

static const azb_field F_BatchApplicationPackageReference[] = {
  F_STRN("applicationId", AZB_REQUIRED, 1, 0, NULL),
  F_STR("version", 0),
};
static const azb_object BatchApplicationPackageReference =
  AZB_OBJECT("BatchApplicationPackageReference",
             F_BatchApplicationPackageReference, NULL);

static const azb_field F_BatchTaskSchedulingPolicy[] = {
  F_ENUM("jobDefaultOrder", 0, E_order),
  F_ENUM("nodeFillType", AZB_REQUIRED, E_fill),
};
static const azb_object BatchTaskSchedulingPolicy =
  AZB_OBJECT("BatchTaskSchedulingPolicy", F_BatchTaskSchedulingPolicy, NULL);

static const azb_field F_BatchTaskSchedulingPolicyUpdate[] = {
  F_ENUM("jobDefaultOrder", 0, E_order),
  F_ENUM("nodeFillType", 0, E_fill),
};
static const azb_object BatchTaskSchedulingPolicyUpdate =
  AZB_OBJECT("BatchTaskSchedulingPolicyUpdate", F_BatchTaskSchedulingPolicyUpdate,
             NULL);

/* "The uid and gid properties must be specified together or not at all" */
static void linux_user_rule(azb_vctx *v, int src, int copy) {
  int uid = azb_sch_has(v->L, src, "uid"), gid = azb_sch_has(v->L, src, "gid");
  (void)copy;
  if (uid && !gid)
    azb_vmissing_at(v, "gid", "required when uid is set");
  else if (gid && !uid)
    azb_vmissing_at(v, "uid", "required when gid is set");
}

static const azb_field F_LinuxUserConfiguration[] = {
  F_INT("uid", 0, 0, AZB_INT32_MAX),
  F_INT("gid", 0, 0, AZB_INT32_MAX),
  F_STRN("sshPrivateKey", AZB_SECRET, 1, 0, NULL),
};
static const azb_object LinuxUserConfiguration =
  AZB_OBJECT("LinuxUserConfiguration", F_LinuxUserConfiguration, linux_user_rule);

static const azb_field F_WindowsUserConfiguration[] = {
  F_ENUM("loginMode", 0, E_login),
};
static const azb_object WindowsUserConfiguration =
  AZB_OBJECT("WindowsUserConfiguration", F_WindowsUserConfiguration, NULL);

static const azb_field F_UserAccount[] = {
  F_STRN("name", AZB_REQUIRED, 1, 20, NULL),
  F_STRN("password", AZB_REQUIRED | AZB_SECRET, 1, 0, NULL),
  F_ENUM("elevationLevel", 0, azb_E_ElevationLevel),
  F_OBJ("linuxUserConfiguration", 0, LinuxUserConfiguration),
  F_OBJ("windowsUserConfiguration", 0, WindowsUserConfiguration),
};
static const azb_object UserAccount = AZB_OBJECT("UserAccount", F_UserAccount, NULL);

static const azb_field F_BatchMetadataItem[] = {
  F_STRN("name", AZB_REQUIRED, 1, 0, NULL),
  F_STR("value", AZB_REQUIRED),
};
static const azb_object BatchMetadataItem =
  AZB_OBJECT("BatchMetadataItem", F_BatchMetadataItem, NULL);

/* }====================================================== */


/*
** {======================================================
** Mounts and upgrades
** =======================================================
*/

static const char *const K_blobauth[] = {"accountKey", "sasKey",
                                         "identityReference", NULL};

static void blob_rule(azb_vctx *v, int src, int copy) {
  (void)copy;
  exactly_one(v, src, K_blobauth, "accountKey, sasKey, identityReference");
}

static const azb_field F_AzureBlobFileSystemConfiguration[] = {
  F_STRN("accountName", AZB_REQUIRED, 1, 0, NULL),
  F_STRN("containerName", AZB_REQUIRED, 1, 0, NULL),
  F_STRN("accountKey", AZB_SECRET, 1, 0, NULL),
  F_STRN("sasKey", AZB_SECRET, 1, 0, NULL),
  F_STR("blobfuseOptions", 0),
  F_STRN("relativeMountPath", AZB_REQUIRED, 1, 0, NULL),
  F_OBJ("identityReference", 0, azb_BatchNodeIdentityReference),
};
static const azb_object AzureBlobFileSystemConfiguration =
  AZB_OBJECT("AzureBlobFileSystemConfiguration",
             F_AzureBlobFileSystemConfiguration, blob_rule);

static const azb_field F_NfsMountConfiguration[] = {
  F_STRN("source", AZB_REQUIRED, 1, 0, NULL),
  F_STRN("relativeMountPath", AZB_REQUIRED, 1, 0, NULL),
  F_STR("mountOptions", 0),
};
static const azb_object NfsMountConfiguration =
  AZB_OBJECT("NfsMountConfiguration", F_NfsMountConfiguration, NULL);

static const azb_field F_CifsMountConfiguration[] = {
  F_STRN("username", AZB_REQUIRED, 1, 0, NULL),
  F_STRN("source", AZB_REQUIRED, 1, 0, NULL),
  F_STRN("relativeMountPath", AZB_REQUIRED, 1, 0, NULL),
  F_STR("mountOptions", 0),
  F_STRN("password", AZB_REQUIRED | AZB_SECRET, 1, 0, NULL),
};
static const azb_object CifsMountConfiguration =
  AZB_OBJECT("CifsMountConfiguration", F_CifsMountConfiguration, NULL);

static const azb_field F_AzureFileShareConfiguration[] = {
  F_STRN("accountName", AZB_REQUIRED, 1, 0, NULL),
  F_STRN("accountKey", AZB_REQUIRED | AZB_SECRET, 1, 0, NULL),
  F_STRN("azureFileUrl", AZB_REQUIRED, 0, 0, check_https),
  F_STRN("relativeMountPath", AZB_REQUIRED, 1, 0, NULL),
  F_STR("mountOptions", 0),
};
static const azb_object AzureFileShareConfiguration =
  AZB_OBJECT("AzureFileShareConfiguration", F_AzureFileShareConfiguration, NULL);

static const char *const K_mounts[] = {
  "azureBlobFileSystemConfiguration", "nfsMountConfiguration",
  "cifsMountConfiguration", "azureFileShareConfiguration", NULL};

static void mount_rule(azb_vctx *v, int src, int copy) {
  (void)copy;
  exactly_one(v, src, K_mounts, "azureBlobFileSystemConfiguration, "
              "nfsMountConfiguration, cifsMountConfiguration, "
              "azureFileShareConfiguration");
}

static const azb_field F_MountConfiguration[] = {
  F_OBJ("azureBlobFileSystemConfiguration", 0, AzureBlobFileSystemConfiguration),
  F_OBJ("nfsMountConfiguration", 0, NfsMountConfiguration),
  F_OBJ("cifsMountConfiguration", 0, CifsMountConfiguration),
  F_OBJ("azureFileShareConfiguration", 0, AzureFileShareConfiguration),
};
static const azb_object MountConfiguration =
  AZB_OBJECT("MountConfiguration", F_MountConfiguration, mount_rule);

static const azb_field F_AutomaticOsUpgradePolicy[] = {
  F_BOOL("disableAutomaticRollback", 0),
  F_BOOL("enableAutomaticOSUpgrade", 0),
  F_BOOL("useRollingUpgradePolicy", 0),
  F_BOOL("osRollingUpgradeDeferral", 0),
};
static const azb_object AutomaticOsUpgradePolicy =
  AZB_OBJECT("AutomaticOsUpgradePolicy", F_AutomaticOsUpgradePolicy, NULL);

/* "the value of maxBatchInstancePercent should not be more than
** maxUnhealthyInstancePercent" */
static void rolling_rule(azb_vctx *v, int src, int copy) {
  lua_Integer b, u;
  (void)src;
  if (azb_sch_getint(v->L, copy, "maxBatchInstancePercent", &b) &&
      azb_sch_getint(v->L, copy, "maxUnhealthyInstancePercent", &u) && b > u)
    azb_verror_at(v, "maxBatchInstancePercent", "must not be more than "
                  "maxUnhealthyInstancePercent (%I)", (LUAI_UACINT)u);
}

static const azb_field F_RollingUpgradePolicy[] = {
  F_BOOL("enableCrossZoneUpgrade", 0),
  F_INT("maxBatchInstancePercent", 0, 5, 100),
  F_INT("maxUnhealthyInstancePercent", 0, 5, 100),
  F_INT("maxUnhealthyUpgradedInstancePercent", 0, 0, 100),
  F_DUR("pauseTimeBetweenBatches", 0, 0, 0),
  F_BOOL("prioritizeUnhealthyInstances", 0),
  F_BOOL("rollbackFailedInstancesOnPolicyBreach", 0),
};
static const azb_object RollingUpgradePolicy =
  AZB_OBJECT("RollingUpgradePolicy", F_RollingUpgradePolicy, rolling_rule);

static const azb_field F_UpgradePolicy[] = {
  F_ENUM("mode", AZB_REQUIRED, E_upgrade),
  F_OBJ("automaticOSUpgradePolicy", 0, AutomaticOsUpgradePolicy),
  F_OBJ("rollingUpgradePolicy", 0, RollingUpgradePolicy),
};
static const azb_object UpgradePolicy =
  AZB_OBJECT("UpgradePolicy", F_UpgradePolicy, NULL);

static const azb_field F_UpgradePolicyUpdate[] = {
  F_ENUM("mode", 0, E_upgrade),
  F_OBJ("automaticOSUpgradePolicy", 0, AutomaticOsUpgradePolicy),
  F_OBJ("rollingUpgradePolicy", 0, RollingUpgradePolicy),
};
static const azb_object UpgradePolicyUpdate =
  AZB_OBJECT("UpgradePolicyUpdate", F_UpgradePolicyUpdate, NULL);

/* }====================================================== */


/*
** {======================================================
** The pool bodies
** =======================================================
*/

/* Rules that span the VM configuration and the upgrade policy. */
static void pool_cross_rules(azb_vctx *v, int copy) {
  lua_State *L = v->L;
  int zonal, crosszone, autoos, winupdates;
  azb_sch_push(L, copy, "virtualMachineConfiguration",
               "nodePlacementConfiguration", "policy", NULL);
  zonal = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "zonal") == 0;
  crosszone = azb_sch_push(L, copy, "upgradePolicy", "rollingUpgradePolicy",
                           "enableCrossZoneUpgrade", NULL) == LUA_TBOOLEAN;
  azb_sch_push(L, copy, "upgradePolicy", "automaticOSUpgradePolicy",
               "enableAutomaticOSUpgrade", NULL);
  autoos = lua_toboolean(L, -1);
  azb_sch_push(L, copy, "virtualMachineConfiguration", "windowsConfiguration",
               "enableAutomaticUpdates", NULL);
  winupdates = lua_toboolean(L, -1);
  lua_pop(L, 4);
  /* "able to be set ... only when using NodePlacementConfiguration as Zonal" */
  if (crosszone && !zonal) {
    azb_path_key(v, "upgradePolicy");
    azb_path_key(v, "rollingUpgradePolicy");
    azb_verror_at(v, "enableCrossZoneUpgrade", "can be set only when "
                  "virtualMachineConfiguration.nodePlacementConfiguration.policy "
                  "is 'zonal'");
    azb_path_pop(v);
    azb_path_pop(v);
  }
  if (autoos && winupdates) {
    azb_path_key(v, "virtualMachineConfiguration");
    azb_path_key(v, "windowsConfiguration");
    azb_verror_at(v, "enableAutomaticUpdates", "cannot be true when "
                  "upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade "
                  "is true");
    azb_path_pop(v);
    azb_path_pop(v);
  }
}

static void pool_rule(azb_vctx *v, int src, int copy) {
  lua_State *L = v->L;
  int autoscale = azb_sch_getbool(L, copy, "enableAutoScale");
  pool_cross_rules(v, copy);
  if (autoscale < 0 && azb_sch_has(L, src, "enableAutoScale"))
    return;   /* enableAutoScale itself is wrong: nothing to check against */
  if (autoscale == 1) {
    static const char *const excluded[] = {"targetDedicatedNodes",
      "targetLowPriorityNodes", "resizeTimeout", NULL};
    for (int i = 0; excluded[i] != NULL; i++)
      if (azb_sch_has(L, src, excluded[i]))
        azb_verror_at(v, excluded[i], "must not be set when enableAutoScale is true");
    if (!azb_sch_has(L, src, "autoScaleFormula"))
      azb_vmissing_at(v, "autoScaleFormula", "required when enableAutoScale is true");
    return;
  }
  if (azb_sch_has(L, src, "autoScaleFormula"))
    azb_verror_at(v, "autoScaleFormula",
                  "must not be set unless enableAutoScale is true");
  if (azb_sch_has(L, src, "autoScaleEvaluationInterval")) {
    azb_path_key(v, "autoScaleEvaluationInterval");
    azb_vwarn(v, NULL, "has no effect unless enableAutoScale is true");
    azb_path_pop(v);
  }
  if (!azb_sch_has(L, src, "targetDedicatedNodes") &&
      !azb_sch_has(L, src, "targetLowPriorityNodes"))
    azb_vmissing_at(v, "targetDedicatedNodes", "required unless "
                    "targetLowPriorityNodes is set or enableAutoScale is true");
  else
    sizing_warnings(v, copy, 1);
}

static const azb_field F_BatchPoolCreateOptions[] = {
  F_STRN("id", AZB_REQUIRED, 0, 0, check_pool_id),
  F_STRN("displayName", 0, 0, 1024, NULL),
  F_STRN("vmSize", AZB_REQUIRED, 1, 0, NULL),
  /* "This property must be specified", though not in 'required' */
  F_OBJ("virtualMachineConfiguration", AZB_REQUIRED,
        azb_VirtualMachineConfiguration),
  F_DUR("resizeTimeout", 0, MINUTES(5), 0),
  F_INT("targetDedicatedNodes", 0, 0, AZB_INT32_MAX),
  F_INT("targetLowPriorityNodes", 0, 0, AZB_INT32_MAX),
  F_BOOL("enableAutoScale", 0),
  F_STRN("autoScaleFormula", 0, 1, 0, NULL),
  F_DUR("autoScaleEvaluationInterval", 0, MINUTES(5), HOURS(168)),
  F_BOOL("enableInterNodeCommunication", 0),
  F_OBJ("networkConfiguration", 0, azb_NetworkConfiguration),
  F_OBJ("startTask", 0, BatchStartTask),
  F_ARR("applicationPackageReferences", 0, BatchApplicationPackageReferenceCreate,
        0, 10),
  F_INT("taskSlotsPerNode", 0, 1, 256),
  F_OBJ("taskSchedulingPolicy", 0, BatchTaskSchedulingPolicy),
  F_ARR("userAccounts", 0, UserAccount, 0, 0),
  F_ARR("metadata", 0, BatchMetadataItem, 0, 0),
  F_ARR("mountConfiguration", 0, MountConfiguration, 0, 0),
  F_OBJ("upgradePolicy", 0, UpgradePolicy),
};
static const azb_object BatchPoolCreateOptions =
  AZB_OBJECT("BatchPoolCreateOptions", F_BatchPoolCreateOptions, pool_rule);

static const azb_field F_BatchPoolUpdateOptions[] = {
  F_STRN("displayName", 0, 0, 1024, NULL),
  F_STRN("vmSize", 0, 1, 0, NULL),
  F_BOOL("enableInterNodeCommunication", 0),
  F_OBJ("startTask", 0, BatchStartTaskUpdate),
  F_ARR("applicationPackageReferences", 0, BatchApplicationPackageReference, 0, 10),
  F_ARR("metadata", 0, BatchMetadataItem, 0, 0),
  F_OBJ("virtualMachineConfiguration", 0, azb_VirtualMachineConfigurationUpdate),
  F_INT("taskSlotsPerNode", 0, 1, 256),
  F_OBJ("taskSchedulingPolicy", 0, BatchTaskSchedulingPolicyUpdate),
  F_OBJ("networkConfiguration", 0, azb_NetworkConfigurationUpdate),
  F_ARR("userAccounts", 0, UserAccount, 0, 0),
  F_ARR("mountConfiguration", 0, MountConfiguration, 0, 0),
  F_OBJ("upgradePolicy", 0, UpgradePolicyUpdate),
};
static const azb_object BatchPoolUpdateOptions =
  AZB_OBJECT("BatchPoolUpdateOptions", F_BatchPoolUpdateOptions, NULL);

static const azb_field F_BatchPoolReplaceOptions[] = {
  F_OBJ("startTask", 0, BatchStartTask),
  F_ARR("applicationPackageReferences", AZB_REQUIRED,
        BatchApplicationPackageReference, 0, 10),
  F_ARR("metadata", AZB_REQUIRED, BatchMetadataItem, 0, 0),
};
static const azb_object BatchPoolReplaceOptions =
  AZB_OBJECT("BatchPoolReplaceOptions", F_BatchPoolReplaceOptions, NULL);

static void resize_rule(azb_vctx *v, int src, int copy) {
  (void)src;
  sizing_warnings(v, copy, 0);
}

static const azb_field F_BatchPoolResizeOptions[] = {
  F_INT("targetDedicatedNodes", 0, 0, AZB_INT32_MAX),
  F_INT("targetLowPriorityNodes", 0, 0, AZB_INT32_MAX),
  F_DUR("resizeTimeout", 0, MINUTES(5), 0),
  F_ENUM("nodeDeallocationOption", 0, E_dealloc),
};
static const azb_object BatchPoolResizeOptions =
  AZB_OBJECT("BatchPoolResizeOptions", F_BatchPoolResizeOptions, resize_rule);

static const azb_field F_BatchPoolEnableAutoScaleOptions[] = {
  F_STRN("autoScaleFormula", 0, 1, 0, NULL),
  F_DUR("autoScaleEvaluationInterval", 0, MINUTES(5), HOURS(168)),
};
static const azb_object BatchPoolEnableAutoScaleOptions =
  AZB_OBJECT("BatchPoolEnableAutoScaleOptions", F_BatchPoolEnableAutoScaleOptions,
             NULL);

static const azb_field F_BatchPoolEvaluateAutoScaleOptions[] = {
  F_STRN("autoScaleFormula", AZB_REQUIRED, 1, 0, NULL),
};
static const azb_object BatchPoolEvaluateAutoScaleOptions =
  AZB_OBJECT("BatchPoolEvaluateAutoScaleOptions",
             F_BatchPoolEvaluateAutoScaleOptions, NULL);

static const azb_field F_BatchNodeRemoveOptions[] = {
  F_ARRSTR("nodeList", AZB_REQUIRED, 1, 100, check_nonempty),
  F_DUR("resizeTimeout", 0, MINUTES(5), 0),
  F_ENUM("nodeDeallocationOption", 0, E_dealloc),
};
static const azb_object BatchNodeRemoveOptions =
  AZB_OBJECT("BatchNodeRemoveOptions", F_BatchNodeRemoveOptions, NULL);

const azb_kind azb_kinds[] = {
  {"pool", "pool", &BatchPoolCreateOptions, AZB_POOLSPEC},
  {"virtualMachineConfiguration", "virtualMachineConfiguration",
   &azb_VirtualMachineConfiguration, AZB_VMCONFIG},
  {"pool.update", "pool", &BatchPoolUpdateOptions, "azbatch.PoolUpdateOptions"},
  {"pool.replace", "pool", &BatchPoolReplaceOptions, "azbatch.PoolReplaceOptions"},
  {"pool.resize", "resize", &BatchPoolResizeOptions, "azbatch.PoolResizeOptions"},
  {"pool.enableautoscale", "autoScale", &BatchPoolEnableAutoScaleOptions,
   "azbatch.PoolEnableAutoScaleOptions"},
  {"pool.evaluateautoscale", "autoScale", &BatchPoolEvaluateAutoScaleOptions,
   "azbatch.PoolEvaluateAutoScaleOptions"},
  {"pool.removenodes", "removeNodes", &BatchNodeRemoveOptions,
   "azbatch.NodeRemoveOptions"},
  {NULL, NULL, NULL, NULL}
};

/* }====================================================== */
