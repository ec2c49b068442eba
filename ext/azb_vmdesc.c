/*
** azb_vmdesc.c: descriptors for VirtualMachineConfiguration (and its
** ...Update twin) with everything it references, contract 2025-06-01.
** Fields are listed in the contract's property order: that is the JSON
** key order too.
*/
#include <string.h>

#include "azb_schema.h"


/*
** {======================================================
** Enums (canonical casing from the contract)
** =======================================================
*/

static const char *const E_caching[] = {"none", "readonly", "readwrite", NULL};
static const char *const E_storage[] = {"standard_lrs", "premium_lrs",
                                        "standardssd_lrs", NULL};
static const char *const E_encryption[] = {"DiskWithVMGuestState",
                                           "NonPersistedTPM", "VMGuestStateOnly", NULL};
static const char *const E_container[] = {"dockerCompatible", "criCompatible", NULL};
static const char *const E_target[] = {"osdisk", "temporarydisk", NULL};
static const char *const E_placement[] = {"regional", "zonal", NULL};
static const char *const E_diffdisk[] = {"cachedisk", NULL};
static const char *const E_hostmode[] = {"Audit", "Enforce", NULL};
static const char *const E_security[] = {"trustedLaunch", "confidentialvm", NULL};
/* licenseType is a plain string in the contract; its prose lists these */
static const char *const E_license[] = {"Windows_Server", "Windows_Client", NULL};
const char *const azb_E_ElevationLevel[] = {"nonadmin", "admin", NULL};

/* }====================================================== */


/*
** {======================================================
** Resource id shapes
** =======================================================
*/

static const char *const S_identity[] = {
  "subscriptions", "*", "resourceGroups", "*", "providers",
  "Microsoft.ManagedIdentity", "userAssignedIdentities", "*", NULL};
static const char *const S_des[] = {
  "subscriptions", "*", "resourceGroups", "*", "providers",
  "Microsoft.Compute", "diskEncryptionSets", "*", NULL};
static const char *const S_artifact[] = {
  "subscriptions", "*", "resourceGroups", "*", "providers", "Microsoft.Compute",
  "galleries", "*", "serviceArtifacts", "*", "vmArtifactsProfiles", "*", NULL};
static const char *const S_invmprofile[] = {
  "subscriptions", "*", "resourceGroups", "*", "providers", "Microsoft.Compute",
  "galleries", "*", "inVMAccessControlProfiles", "*", "versions", "*", NULL};

static int check_identity_id(azb_vctx *v, int idx) {
  return azb_sch_shape(v, idx, S_identity,
    "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/{name}");
}

static int check_des_id(azb_vctx *v, int idx) {
  return azb_sch_shape(v, idx, S_des,
    "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    "Microsoft.Compute/diskEncryptionSets/{name}");
}

static int check_artifact_id(azb_vctx *v, int idx) {
  return azb_sch_shape(v, idx, S_artifact,
    "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    "Microsoft.Compute/galleries/{gallery}/serviceArtifacts/{artifact}/"
    "vmArtifactsProfiles/{profile}");
}

static int check_invmprofile_id(azb_vctx *v, int idx) {
  return azb_sch_shape(v, idx, S_invmprofile,
    "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    "Microsoft.Compute/galleries/{gallery}/inVMAccessControlProfiles/"
    "{profile}/versions/{version}");
}

/* }====================================================== */


/*
** {======================================================
** Leaf objects
** =======================================================
*/

static const azb_field F_WindowsConfiguration[] = {
  F_BOOL("enableAutomaticUpdates", 0),
};
static const azb_object WindowsConfiguration =
  AZB_OBJECT("WindowsConfiguration", F_WindowsConfiguration, NULL);

static const azb_field F_DiskEncryptionSetParameters[] = {
  F_STRN("id", 0, 1, 0, check_des_id),
};
static const azb_object DiskEncryptionSetParameters =
  AZB_OBJECT("DiskEncryptionSetParameters", F_DiskEncryptionSetParameters, NULL);

static const azb_field F_BatchVmDiskSecurityProfile[] = {
  F_ENUM("securityEncryptionType", 0, E_encryption),
};
static const azb_object BatchVmDiskSecurityProfile =
  AZB_OBJECT("BatchVmDiskSecurityProfile", F_BatchVmDiskSecurityProfile, NULL);

static const azb_field F_ManagedDisk[] = {
  F_OBJ("diskEncryptionSet", 0, DiskEncryptionSetParameters),
  F_ENUM("storageAccountType", 0, E_storage),
  F_OBJ("securityProfile", 0, BatchVmDiskSecurityProfile),
};
static const azb_object ManagedDisk = AZB_OBJECT("ManagedDisk", F_ManagedDisk, NULL);

static const azb_field F_DataDisk[] = {
  F_INT("lun", AZB_REQUIRED, 0, 63),
  F_ENUM("caching", 0, E_caching),
  F_INT("diskSizeGB", AZB_REQUIRED, 1, AZB_INT32_MAX),
  F_OBJ("managedDisk", 0, ManagedDisk),
};
static const azb_object DataDisk = AZB_OBJECT("DataDisk", F_DataDisk, NULL);

static const azb_field F_BatchNodeIdentityReference[] = {
  F_STRN("resourceId", 0, 1, 0, check_identity_id),
};
const azb_object azb_BatchNodeIdentityReference =
  AZB_OBJECT("BatchNodeIdentityReference", F_BatchNodeIdentityReference, NULL);

static const azb_field F_ContainerRegistryReference[] = {
  F_STR("username", 0),
  F_STR("password", AZB_SECRET),
  F_STR("registryServer", 0),
  F_OBJ("identityReference", 0, azb_BatchNodeIdentityReference),
};
const azb_object azb_ContainerRegistryReference =
  AZB_OBJECT("ContainerRegistryReference", F_ContainerRegistryReference, NULL);

static const azb_field F_BatchContainerConfiguration[] = {
  F_ENUM("type", AZB_REQUIRED, E_container),
  F_ARRSTR("containerImageNames", 0, 0, 0, NULL),
  F_ARR("containerRegistries", 0, azb_ContainerRegistryReference, 0, 0),
};
static const azb_object BatchContainerConfiguration =
  AZB_OBJECT("BatchContainerConfiguration", F_BatchContainerConfiguration, NULL);

static const azb_field F_BatchContainerConfigurationUpdate[] = {
  F_ENUM("type", 0, E_container),
  F_ARRSTR("containerImageNames", 0, 0, 0, NULL),
  F_ARR("containerRegistries", 0, azb_ContainerRegistryReference, 0, 0),
};
static const azb_object BatchContainerConfigurationUpdate =
  AZB_OBJECT("BatchContainerConfigurationUpdate",
             F_BatchContainerConfigurationUpdate, NULL);

static const azb_field F_BatchPoolIdentityReference[] = {
  F_STRN("resourceId", 0, 1, 0, check_identity_id),
};
static const azb_object BatchPoolIdentityReference =
  AZB_OBJECT("BatchPoolIdentityReference", F_BatchPoolIdentityReference, NULL);

static const azb_field F_DiskCustomerManagedKey[] = {
  F_OBJ("identityReference", 0, BatchPoolIdentityReference),
  F_STRN("keyUrl", 0, 1, 0, NULL),
  F_BOOL("rotationToLatestKeyVersionEnabled", 0),
};
static const azb_object DiskCustomerManagedKey =
  AZB_OBJECT("DiskCustomerManagedKey", F_DiskCustomerManagedKey, NULL);

/* "It can be used only when ... OsDisk is set as one of the targets" */
static void disk_encryption_rule(azb_vctx *v, int src, int copy) {
  lua_State *L = v->L;
  int found = 0;
  (void)src;
  if (!azb_sch_has(L, copy, "customerManagedKey"))
    return;
  if (azb_sch_push(L, copy, "targets", NULL) == LUA_TTABLE) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n && !found; i++) {
      lua_rawgeti(L, -1, i);
      found = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "osdisk") == 0;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (!found)
    azb_verror_at(v, "customerManagedKey", "requires 'osdisk' in targets");
}

static const azb_field F_DiskEncryptionConfiguration[] = {
  F_OBJ("customerManagedKey", 0, DiskCustomerManagedKey),
  F_ARRENUM("targets", 0, E_target),
};
static const azb_object DiskEncryptionConfiguration =
  AZB_OBJECT("DiskEncryptionConfiguration", F_DiskEncryptionConfiguration,
             disk_encryption_rule);

static const azb_field F_BatchNodePlacementConfiguration[] = {
  F_ENUM("policy", 0, E_placement),
};
static const azb_object BatchNodePlacementConfiguration =
  AZB_OBJECT("BatchNodePlacementConfiguration", F_BatchNodePlacementConfiguration,
             NULL);

static const azb_field F_VMExtension[] = {
  F_STRN("name", AZB_REQUIRED, 1, 0, NULL),
  F_STRN("publisher", AZB_REQUIRED, 1, 0, NULL),
  F_STRN("type", AZB_REQUIRED, 1, 0, NULL),
  F_STR("typeHandlerVersion", 0),
  F_BOOL("autoUpgradeMinorVersion", 0),
  F_BOOL("enableAutomaticUpgrade", 0),
  F_MAPSTR("settings", 0),
  F_MAPSTR("protectedSettings", AZB_SECRET),
  F_ARRSTR("provisionAfterExtensions", 0, 0, 0, NULL),
};
static const azb_object VMExtension = AZB_OBJECT("VMExtension", F_VMExtension, NULL);

static const azb_field F_BatchDiffDiskSettings[] = {
  F_ENUM("placement", 0, E_diffdisk),
};
static const azb_object BatchDiffDiskSettings =
  AZB_OBJECT("BatchDiffDiskSettings", F_BatchDiffDiskSettings, NULL);

/* The 2016-era imageUris (VHDs for user-subscription accounts): named
** here only to say what replaced it. */
static void legacy_image_uris(azb_vctx *v, int idx) {
  (void)idx;
  azb_image_vhd_error(v, NULL);
  lua_pushnil(v->L);
}

static const azb_field F_BatchOsDisk[] = {
  /* always refused, so never encoded: any descriptor will do */
  F_CUSTOM("imageUris", 0, legacy_image_uris, azb_BatchVmImageReference),
  F_OBJ("ephemeralOSDiskSettings", 0, BatchDiffDiskSettings),
  F_ENUM("caching", 0, E_caching),
  F_INT("diskSizeGB", 0, 1, AZB_INT32_MAX),
  F_OBJ("managedDisk", 0, ManagedDisk),
  F_BOOL("writeAcceleratorEnabled", 0),
};
static const azb_object BatchOsDisk = AZB_OBJECT("BatchOsDisk", F_BatchOsDisk, NULL);

/* Enforce "cannot be used together with 'inVMAccessControlProfileReferenceId'" */
static void host_endpoint_rule(azb_vctx *v, int src, int copy) {
  const char *mode = azb_sch_getstr(v->L, copy, "mode");
  (void)src;
  if (mode != NULL && strcmp(mode, "Enforce") == 0 &&
      azb_sch_has(v->L, copy, "inVMAccessControlProfileReferenceId"))
    azb_verror_at(v, "mode", "'Enforce' cannot be used together with "
                  "inVMAccessControlProfileReferenceId");
}

static const azb_field F_HostEndpointSettings[] = {
  F_STRN("inVMAccessControlProfileReferenceId", 0, 1, 0, check_invmprofile_id),
  F_ENUM("mode", 0, E_hostmode),
};
static const azb_object HostEndpointSettings =
  AZB_OBJECT("HostEndpointSettings", F_HostEndpointSettings, host_endpoint_rule);

static const azb_field F_ProxyAgentSettings[] = {
  F_BOOL("enabled", 0),
  F_OBJ("imds", 0, HostEndpointSettings),
  F_OBJ("wireServer", 0, HostEndpointSettings),
};
static const azb_object ProxyAgentSettings =
  AZB_OBJECT("ProxyAgentSettings", F_ProxyAgentSettings, NULL);

static const azb_field F_BatchUefiSettings[] = {
  F_BOOL("secureBootEnabled", 0),
  F_BOOL("vTpmEnabled", 0),
};
static const azb_object BatchUefiSettings =
  AZB_OBJECT("BatchUefiSettings", F_BatchUefiSettings, NULL);

/* securityType "has to be set to any specified value to enable UefiSettings" */
static void security_profile_rule(azb_vctx *v, int src, int copy) {
  (void)copy;
  if (azb_sch_has(v->L, src, "uefiSettings") &&
      !azb_sch_has(v->L, src, "securityType"))
    azb_verror_at(v, "uefiSettings", "requires securityType");
}

static const azb_field F_SecurityProfile[] = {
  F_BOOL("encryptionAtHost", 0),
  F_OBJ("proxyAgentSettings", 0, ProxyAgentSettings),
  F_ENUM("securityType", 0, E_security),
  F_OBJ("uefiSettings", 0, BatchUefiSettings),
};
static const azb_object SecurityProfile =
  AZB_OBJECT("SecurityProfile", F_SecurityProfile, security_profile_rule);

static const azb_field F_ServiceArtifactReference[] = {
  F_STRN("id", AZB_REQUIRED, 1, 0, check_artifact_id),
};
static const azb_object ServiceArtifactReference =
  AZB_OBJECT("ServiceArtifactReference", F_ServiceArtifactReference, NULL);

static const azb_field F_ServiceArtifactReferenceUpdate[] = {
  F_STRN("id", 0, 1, 0, check_artifact_id),
};
static const azb_object ServiceArtifactReferenceUpdate =
  AZB_OBJECT("ServiceArtifactReferenceUpdate", F_ServiceArtifactReferenceUpdate,
             NULL);

/* azb_image_check validates; this fixes the JSON key order. */
static const azb_field F_BatchVmImageReference[] = {
  F_STR("publisher", 0),
  F_STR("offer", 0),
  F_STR("sku", 0),
  F_STR("version", 0),
  F_STR("virtualMachineImageId", 0),
  F_STR("exactVersion", 0),
  F_STR("sharedGalleryImageId", 0),
  F_STR("communityGalleryImageId", 0),
};
const azb_object azb_BatchVmImageReference =
  AZB_OBJECT("BatchVmImageReference", F_BatchVmImageReference, NULL);

/* }====================================================== */


/*
** {======================================================
** VirtualMachineConfiguration: cross-field rules
** =======================================================
*/

static int is_windows_agent(const char *agent) {
  return azb_strnieq(agent, "batch.node.windows", 18);
}

/* Linux-only restrictions, once the agent names the OS */
static void linux_rules(azb_vctx *v, int src, int img, const char *agent) {
  lua_State *L = v->L;
  const char *shown = azb_text_pushquoted(L, agent, strlen(agent), '\'');
  int gallery = 0;
  if (azb_sch_has(L, src, "windowsConfiguration"))
    azb_verror_at(v, "windowsConfiguration",
                  "must not be set for a Linux node agent (%s)", shown);
  if (azb_sch_has(L, src, "licenseType"))
    azb_verror_at(v, "licenseType",
                  "applies only to Windows images, not node agent %s", shown);
  if (img != 0) {
    const char *id = azb_sch_getstr(L, img, "virtualMachineImageId");
    gallery = (id != NULL && azb_strihas(id, "/galleries/")) ||
              azb_sch_has(L, img, "sharedGalleryImageId") ||
              azb_sch_has(L, img, "communityGalleryImageId");
  }
  if (gallery && azb_sch_has(L, src, "diskEncryptionConfiguration"))
    azb_verror_at(v, "diskEncryptionConfiguration", "disk encryption "
                  "configuration is not supported on Linux pool created with "
                  "Azure Compute Gallery Image");
  lua_pop(L, 1);
}

/* "The value must be between 0 and 63"; each disk "should have a distinct" lun */
static void unique_luns(azb_vctx *v, int copy) {
  lua_State *L = v->L;
  lua_Integer first[64] = {0};
  lua_Integer n;
  if (azb_sch_push(L, copy, "dataDisks", NULL) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_Integer lun;
    if (lua_rawgeti(L, -1, i) == LUA_TTABLE &&
        azb_sch_getint(L, lua_gettop(L), "lun", &lun) && lun >= 0 && lun < 64) {
      if (first[lun] != 0) {
        azb_path_key(v, "dataDisks");
        azb_path_index(v, i);
        azb_verror_at(v, "lun", "duplicate lun %I (also dataDisks[%I])",
                      (LUAI_UACINT)lun, (LUAI_UACINT)first[lun]);
        azb_path_pop(v);
        azb_path_pop(v);
      }
      else
        first[lun] = i;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* The disk securityProfile "can only be set for Confidential VMs and
** [is] required when using Confidential VMs". */
static void confidential_rules(azb_vctx *v, int copy) {
  lua_State *L = v->L;
  int has_disk, has_type, confidential;
  azb_sch_push(L, copy, "securityProfile", "securityType", NULL);
  confidential = lua_type(L, -1) == LUA_TSTRING &&
                 strcmp(lua_tostring(L, -1), "confidentialvm") == 0;
  lua_pop(L, 1);
  has_disk = azb_sch_push(L, copy, "osDisk", "managedDisk", "securityProfile",
                          NULL) == LUA_TTABLE;
  lua_pop(L, 1);
  has_type = azb_sch_push(L, copy, "osDisk", "managedDisk", "securityProfile",
                          "securityEncryptionType", NULL) == LUA_TSTRING;
  lua_pop(L, 1);
  if (has_disk && !confidential) {
    azb_path_key(v, "osDisk");
    azb_path_key(v, "managedDisk");
    azb_verror_at(v, "securityProfile", "can only be set for confidential VMs "
                  "(securityProfile.securityType 'confidentialvm')");
    azb_path_pop(v);
    azb_path_pop(v);
  }
  else if (confidential && !has_type) {
    azb_path_key(v, "osDisk");
    azb_path_key(v, "managedDisk");
    azb_path_key(v, "securityProfile");
    azb_vmissing_at(v, "securityEncryptionType",
                    "required when securityProfile.securityType is 'confidentialvm'");
    azb_path_pop(v);
    azb_path_pop(v);
    azb_path_pop(v);
  }
}

static void vm_rule(azb_vctx *v, int src, int copy) {
  lua_State *L = v->L;
  const char *agent = azb_sch_getstr(L, copy, "nodeAgentSKUId");
  int img = 0;
  if (azb_sch_push(L, copy, "imageReference", NULL) == LUA_TTABLE)
    img = lua_gettop(L);
  if (img != 0 && agent != NULL)
    azb_image_check_agent(v, img, agent);
  if (agent != NULL && !is_windows_agent(agent))
    linux_rules(v, src, img, agent);
  unique_luns(v, copy);
  confidential_rules(v, copy);
  lua_pop(L, 1);
}

/* }====================================================== */


/*
** {======================================================
** VirtualMachineConfiguration and its update twin
** =======================================================
*/

static const azb_field F_VirtualMachineConfiguration[] = {
  F_CUSTOM("imageReference", AZB_REQUIRED, azb_image_check, azb_BatchVmImageReference),
  F_STRN("nodeAgentSKUId", AZB_REQUIRED, 1, 0, NULL),
  F_OBJ("windowsConfiguration", 0, WindowsConfiguration),
  F_ARR("dataDisks", 0, DataDisk, 0, 0),
  F_ENUM("licenseType", 0, E_license),
  F_OBJ("containerConfiguration", 0, BatchContainerConfiguration),
  F_OBJ("diskEncryptionConfiguration", 0, DiskEncryptionConfiguration),
  F_OBJ("nodePlacementConfiguration", 0, BatchNodePlacementConfiguration),
  F_ARR("extensions", 0, VMExtension, 0, 0),
  F_OBJ("osDisk", 0, BatchOsDisk),
  F_OBJ("securityProfile", 0, SecurityProfile),
  F_OBJ("serviceArtifactReference", 0, ServiceArtifactReference),
};
const azb_object azb_VirtualMachineConfiguration =
  AZB_OBJECT("VirtualMachineConfiguration", F_VirtualMachineConfiguration, vm_rule);

static const azb_field F_VirtualMachineConfigurationUpdate[] = {
  F_CUSTOM("imageReference", 0, azb_image_check, azb_BatchVmImageReference),
  F_STRN("nodeAgentSKUId", 0, 1, 0, NULL),
  F_OBJ("windowsConfiguration", 0, WindowsConfiguration),
  F_ARR("dataDisks", 0, DataDisk, 0, 0),
  F_ENUM("licenseType", 0, E_license),
  F_OBJ("containerConfiguration", 0, BatchContainerConfigurationUpdate),
  F_OBJ("diskEncryptionConfiguration", 0, DiskEncryptionConfiguration),
  F_OBJ("nodePlacementConfiguration", 0, BatchNodePlacementConfiguration),
  F_ARR("extensions", 0, VMExtension, 0, 0),
  F_OBJ("osDisk", 0, BatchOsDisk),
  F_OBJ("securityProfile", 0, SecurityProfile),
  F_OBJ("serviceArtifactReference", 0, ServiceArtifactReferenceUpdate),
};
const azb_object azb_VirtualMachineConfigurationUpdate =
  AZB_OBJECT("VirtualMachineConfigurationUpdate",
             F_VirtualMachineConfigurationUpdate, vm_rule);

/* }====================================================== */
