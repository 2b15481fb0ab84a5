/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define SAFECAD_BUS_NAME "org.safecad.Manager1"
#define SAFECAD_MANAGER_PATH "/org/safecad/Manager1"
#define SAFECAD_MANAGER_INTERFACE "org.safecad.Manager1"
#define SAFECAD_TOKEN_INTERFACE "org.safecad.Token1"
#define SAFECAD_TOKEN_PATH_PREFIX "/org/safecad/token"
#define SAFECAD_OBJECT_MANAGER_PATH "/org/safecad"

/* Named errors: clients map them to precise messages and exit codes. */
#define SAFECAD_ERROR_FAILED "org.safecad.Error.Failed"
#define SAFECAD_ERROR_NOTHING_TO_DO "org.safecad.Error.NothingToDo"
#define SAFECAD_ERROR_WRONG_PIN "org.safecad.Error.WrongPin"
#define SAFECAD_ERROR_PIN_LENGTH "org.safecad.Error.PinLength"
#define SAFECAD_ERROR_AGENCIES_PENDING "org.safecad.Error.AgenciesPending"
#define SAFECAD_ERROR_PIN_LOCKED "org.safecad.Error.PinLocked"
#define SAFECAD_ERROR_CA "org.safecad.Error.CA"
#define SAFECAD_ERROR_FINAL_TRY "org.safecad.Error.FinalTry"
#define SAFECAD_ERROR_BUSY "org.safecad.Error.Busy"
#define SAFECAD_ERROR_TOKEN_GONE "org.safecad.Error.TokenGone"
#define SAFECAD_ERROR_NOT_WRITTEN "org.safecad.Error.NotWritten"
/* The token refused a write or a key (full, read-only, not supported);
 * what the CA issued is kept. */
#define SAFECAD_ERROR_TOKEN_REFUSED "org.safecad.Error.TokenRefused"
/* The token's PKCS#11 module crashed or hung: its worker was stopped. */
#define SAFECAD_ERROR_DRIVER_FAILED "org.safecad.Error.DriverFailed"
