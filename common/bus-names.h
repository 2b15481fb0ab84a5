/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define SAFECAD_BUS_NAME "org.safecad.Manager1"
#define SAFECAD_MANAGER_PATH "/org/safecad/Manager1"
#define SAFECAD_MANAGER_INTERFACE "org.safecad.Manager1"
#define SAFECAD_TOKEN_INTERFACE "org.safecad.Token1"
#define SAFECAD_TOKEN_PATH_PREFIX "/org/safecad/token"
#define SAFECAD_OBJECT_MANAGER_PATH "/org/safecad"

/* Named errors: clients map them to precise messages and exit codes. */
#define SAFECAD_ERROR_NO_SUCH_TOKEN "org.safecad.Error.NoSuchToken"
#define SAFECAD_ERROR_TOKEN "org.safecad.Error.Token"
