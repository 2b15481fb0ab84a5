// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A CMP responder (RFC 4210, profiled by RFC 9483) on Bouncy Castle's CMP
// and CRMF classes: an independent peer for safecad's CMP client in the
// integration tests. It answers ir, cr and kur by issuing a certificate
// for the requested public key, checks certConf, and can misbehave on
// request. Every request is recorded (DER, and one JSON line in log.jsonl)
// with what was found wrong with it.
//
// Usage: java -cp <bc jars>:<classes> CmpResponder --ca-cert PEM --ca-key PEM
//        --server-cert PEM --server-key PEM --port-file FILE --record DIR
//        [--chain PEM] [--days N] [--grant-implicit] [--reject FAILINFO,...]
//        [--status-string TEXT] [--poll N] [--check-after SECONDS]
//        [--wrong-nonce] [--unprotected]

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.FileReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.Reader;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Security;
import java.util.ArrayList;
import java.util.Date;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bouncycastle.asn1.ASN1BitString;
import org.bouncycastle.asn1.ASN1GeneralizedTime;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.ASN1OctetString;
import org.bouncycastle.asn1.DERBitString;
import org.bouncycastle.asn1.DERNull;
import org.bouncycastle.asn1.cmp.CMPCertificate;
import org.bouncycastle.asn1.cmp.CMPObjectIdentifiers;
import org.bouncycastle.asn1.cmp.CertConfirmContent;
import org.bouncycastle.asn1.cmp.CertOrEncCert;
import org.bouncycastle.asn1.cmp.CertRepMessage;
import org.bouncycastle.asn1.cmp.CertResponse;
import org.bouncycastle.asn1.cmp.CertifiedKeyPair;
import org.bouncycastle.asn1.cmp.ErrorMsgContent;
import org.bouncycastle.asn1.cmp.InfoTypeAndValue;
import org.bouncycastle.asn1.cmp.PKIBody;
import org.bouncycastle.asn1.cmp.PKIConfirmContent;
import org.bouncycastle.asn1.cmp.PKIFailureInfo;
import org.bouncycastle.asn1.cmp.PKIFreeText;
import org.bouncycastle.asn1.cmp.PKIHeader;
import org.bouncycastle.asn1.cmp.PKIHeaderBuilder;
import org.bouncycastle.asn1.cmp.PKIMessage;
import org.bouncycastle.asn1.cmp.PKIStatus;
import org.bouncycastle.asn1.cmp.PKIStatusInfo;
import org.bouncycastle.asn1.cmp.PollRepContent;
import org.bouncycastle.asn1.cmp.PollReqContent;
import org.bouncycastle.asn1.crmf.CertId;
import org.bouncycastle.asn1.crmf.CertReqMessages;
import org.bouncycastle.asn1.crmf.CertReqMsg;
import org.bouncycastle.asn1.crmf.AttributeTypeAndValue;
import org.bouncycastle.asn1.crmf.CertTemplate;
import org.bouncycastle.asn1.crmf.Controls;
import org.bouncycastle.asn1.crmf.POPOSigningKey;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.cmp.CertificateConfirmationContent;
import org.bouncycastle.cert.cmp.CertificateStatus;
import org.bouncycastle.cert.cmp.GeneralPKIMessage;
import org.bouncycastle.cert.cmp.ProtectedPKIMessage;
import org.bouncycastle.cert.cmp.ProtectedPKIMessageBuilder;
import org.bouncycastle.cert.crmf.CertificateRequestMessage;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.ContentVerifierProvider;
import org.bouncycastle.operator.DefaultDigestAlgorithmIdentifierFinder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;

public final class CmpResponder {
    private static final int MAX_REQUEST = 1 << 20;
    private static final int PVNO_CMP2000 = 2;
    private static final int PVNO_CMP2021 = 3;

    // PKIBody choice tags, in order (RFC 4210 section 5.1.2).
    private static final String[] BODY_NAMES = {
        "ir", "ip", "cr", "cp", "p10cr", "popdecc", "popdecr", "kur", "kup", "krr", "krp",
        "rr", "rp", "ccr", "ccp", "ckuann", "cann", "rann", "crlann", "pkiconf", "nested",
        "genm", "genp", "error", "certConf", "pollReq", "pollRep",
    };

    // PKIFailureInfo bit numbers (RFC 4210 section 5.2.3).
    private static final String[] FAILURE_NAMES = {
        "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId", "badDataFormat",
        "wrongAuthority", "incorrectData", "missingTimeStamp", "badPOP", "certRevoked",
        "certConfirmed", "wrongIntegrity", "badRecipientNonce", "timeNotAvailable",
        "unacceptedPolicy", "unacceptedExtension", "addInfoNotAvailable", "badSenderNonce",
        "badCertTemplate", "signerNotTrusted", "transactionIdInUse", "unsupportedVersion",
        "notAuthorized", "systemUnavail", "systemFailure", "duplicateCertReq",
    };

    /** A request refused with an error message; the reason goes to the log too. */
    private static final class Refusal extends Exception {
        private static final long serialVersionUID = 1L;
        final int failureBit;

        Refusal(String failure, String reason) {
            super(reason);
            this.failureBit = failureBit(failure);
        }
    }

    /** One enrolment, from its ir/cr/kur to its certConf. */
    private static final class Transaction {
        int requestType;
        X509CertificateHolder signer;
        BigInteger certReqId;
        X509CertificateHolder issued;
        byte[] lastSenderNonce;
        int pollsLeft;
        boolean implicitConfirmAsked;
        boolean awaitingConfirm;
        boolean finished;
    }

    /** What the log line of one request says. */
    private static final class Record {
        String type = "unparseable";
        String transactionId;
        String senderNonce;
        String recipNonce;
        Boolean protectionOk;
        Boolean popoOk;
        Boolean certHashOk;
        String error;
        String answer;
        String issuedSerial;
        Boolean implicitConfirm;
        String clientStatus;
    }

    private final Map<String, String> options;
    private final X509CertificateHolder caCert;
    private final PrivateKey caKey;
    private final X509CertificateHolder serverCert;
    private final PrivateKey serverKey;
    private final List<X509CertificateHolder> chain = new ArrayList<>();
    private final Path record;
    private final int days;
    private final boolean grantImplicit;
    private final boolean wrongNonce;
    private final boolean unprotected;
    private final int pollCount;
    private final int checkAfter;
    private final List<Integer> rejectBits = new ArrayList<>();
    private final String statusString;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, Transaction> transactions = new HashMap<>();
    private int sequence;

    private CmpResponder(Map<String, String> options) throws Exception {
        this.options = options;
        caCert = readCertificates(required("--ca-cert")).get(0);
        caKey = readKey(required("--ca-key"));
        serverCert = readCertificates(required("--server-cert")).get(0);
        serverKey = readKey(required("--server-key"));
        if (options.containsKey("--chain")) {
            chain.addAll(readCertificates(options.get("--chain")));
        }
        record = Path.of(required("--record"));
        Files.createDirectories(record);
        days = Integer.parseInt(options.getOrDefault("--days", "365"));
        grantImplicit = options.containsKey("--grant-implicit");
        wrongNonce = options.containsKey("--wrong-nonce");
        unprotected = options.containsKey("--unprotected");
        pollCount = Integer.parseInt(options.getOrDefault("--poll", "0"));
        checkAfter = Integer.parseInt(options.getOrDefault("--check-after", "1"));
        if (options.containsKey("--reject")) {
            for (String name : options.get("--reject").split(",")) {
                rejectBits.add(failureBit(name.trim()));
            }
        }
        statusString = options.get("--status-string");
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        Map<String, String> options = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String name = args[i];
            switch (name) {
                case "--grant-implicit", "--wrong-nonce", "--unprotected" -> options.put(name, "");
                case "--ca-cert", "--ca-key", "--server-cert", "--server-key", "--chain",
                        "--port-file", "--record", "--days", "--reject", "--status-string",
                        "--poll", "--check-after" -> {
                    if (i + 1 >= args.length) {
                        usage("option " + name + " needs a value");
                    }
                    options.put(name, args[++i]);
                }
                default -> usage("unknown option " + name);
            }
        }
        CmpResponder responder = new CmpResponder(options);
        HttpServer server =
                HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        server.createContext("/pkix/", responder::handle);
        server.start();
        // Written whole, then renamed: a reader never sees half a number.
        Path portFile = Path.of(responder.required("--port-file"));
        Path partial = Path.of(portFile + ".partial");
        Files.writeString(partial, server.getAddress().getPort() + "\n");
        Files.move(partial, portFile, StandardCopyOption.ATOMIC_MOVE);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> server.stop(0)));
    }

    private static void usage(String problem) {
        System.err.println("CmpResponder: " + problem);
        System.exit(2);
    }

    private String required(String name) {
        String value = options.get(name);
        if (value == null) {
            usage("option " + name + " is required");
        }
        return value;
    }

    private static int failureBit(String name) {
        for (int i = 0; i < FAILURE_NAMES.length; i++) {
            if (FAILURE_NAMES[i].equals(name)) {
                return i;
            }
        }
        return Integer.parseInt(name);
    }

    private static List<X509CertificateHolder> readCertificates(String path) throws IOException {
        List<X509CertificateHolder> out = new ArrayList<>();
        try (Reader reader = new FileReader(path, StandardCharsets.UTF_8);
                PEMParser parser = new PEMParser(reader)) {
            Object object;
            while ((object = parser.readObject()) != null) {
                if (object instanceof X509CertificateHolder holder) {
                    out.add(holder);
                }
            }
        }
        if (out.isEmpty()) {
            throw new IOException("no certificate in " + path);
        }
        return out;
    }

    private static PrivateKey readKey(String path) throws IOException {
        try (Reader reader = new FileReader(path, StandardCharsets.UTF_8);
                PEMParser parser = new PEMParser(reader)) {
            Object object = parser.readObject();
            JcaPEMKeyConverter converter = new JcaPEMKeyConverter().setProvider("BC");
            if (object instanceof PrivateKeyInfo info) {
                return converter.getPrivateKey(info);
            }
            if (object instanceof PEMKeyPair pair) {
                return converter.getKeyPair(pair).getPrivate();
            }
            throw new IOException("no unencrypted private key in " + path);
        }
    }

    // --- HTTP --------------------------------------------------------------

    private synchronized void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            if (!"POST".equals(exchange.getRequestMethod())) {
                exchange.sendResponseHeaders(405, -1);
                return;
            }
            String contentType = exchange.getRequestHeaders().getFirst("Content-Type");
            if (contentType == null
                    || !contentType.trim().toLowerCase().startsWith("application/pkixcmp")) {
                exchange.sendResponseHeaders(415, -1);
                return;
            }
            byte[] request = readLimited(exchange.getRequestBody());
            if (request == null) {
                exchange.sendResponseHeaders(413, -1);
                return;
            }
            byte[] answer = respond(request);
            exchange.getResponseHeaders().set("Content-Type", "application/pkixcmp");
            exchange.sendResponseHeaders(200, answer.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(answer);
            }
        }
    }

    private static byte[] readLimited(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buffer = new byte[8192];
        int n;
        while ((n = in.read(buffer)) > 0) {
            out.write(buffer, 0, n);
            if (out.size() > MAX_REQUEST) {
                return null;
            }
        }
        return out.toByteArray();
    }

    // --- one request ---------------------------------------------------------

    private byte[] respond(byte[] der) throws IOException {
        int number = ++sequence;
        Record rec = new Record();
        PKIMessage answer;
        GeneralPKIMessage message = null;
        try {
            message = new GeneralPKIMessage(der);
        } catch (Exception e) {
            rec.error = "not a PKIMessage: " + e.getMessage();
        }
        if (message == null) {
            answer = error(null, new Refusal("badDataFormat", rec.error));
        } else {
            PKIHeader header = message.getHeader();
            rec.type = bodyName(message.getBody().getType());
            rec.transactionId = hex(header.getTransactionID());
            rec.senderNonce = hex(header.getSenderNonce());
            rec.recipNonce = hex(header.getRecipNonce());
            try {
                answer = process(message, rec);
            } catch (Refusal refusal) {
                rec.error = refusal.getMessage();
                answer = error(header, refusal);
            } catch (IllegalArgumentException | ClassCastException e) {
                // How Bouncy Castle's getInstance() meets ASN.1 of the wrong shape.
                rec.error = "malformed " + rec.type + ": " + e.getMessage();
                answer = error(header, new Refusal("badDataFormat", rec.error));
            } catch (Exception e) {
                rec.error = "internal error: " + e;
                answer = error(header, new Refusal("systemFailure", rec.error));
            }
        }
        byte[] out = answer.getEncoded();
        rec.answer = bodyName(answer.getBody().getType());
        String stem = String.format("%04d-%s", number, rec.type);
        Files.write(record.resolve(stem + ".der"), der);
        Files.write(record.resolve(stem + "-answer.der"), out);
        writeLog(rec, stem);
        return out;
    }

    private PKIMessage process(GeneralPKIMessage message, Record rec) throws Exception {
        PKIHeader header = message.getHeader();
        int pvno = header.getPvno().intValueExact();
        if (pvno != PVNO_CMP2000 && pvno != PVNO_CMP2021) {
            throw new Refusal("unsupportedVersion", "pvno " + pvno);
        }
        if (header.getTransactionID() == null) {
            throw new Refusal("badRequest", "no transactionID");
        }
        if (header.getSenderNonce() == null) {
            throw new Refusal("badSenderNonce", "no senderNonce");
        }
        X509CertificateHolder signer = checkProtection(message, rec);
        int type = message.getBody().getType();
        return switch (type) {
            case PKIBody.TYPE_INIT_REQ, PKIBody.TYPE_CERT_REQ, PKIBody.TYPE_KEY_UPDATE_REQ ->
                enrol(header, message.getBody(), signer, rec);
            case PKIBody.TYPE_CERT_CONFIRM -> confirm(header, message.getBody(), signer, rec);
            case PKIBody.TYPE_POLL_REQ -> poll(header, message.getBody(), signer, rec);
            case PKIBody.TYPE_ERROR -> answer(header, null,
                    new PKIBody(PKIBody.TYPE_CONFIRM, new PKIConfirmContent()), null);
            default -> throw new Refusal("badRequest", "unsupported body " + bodyName(type));
        };
    }

    /** The signer of a signature-protected request whose certificate chains to the CA. */
    private X509CertificateHolder checkProtection(GeneralPKIMessage message, Record rec)
            throws Exception {
        rec.protectionOk = false;
        if (!message.hasProtection()) {
            throw new Refusal("badMessageCheck", "request is not protected");
        }
        ProtectedPKIMessage protectedMessage = new ProtectedPKIMessage(message);
        if (protectedMessage.hasPasswordBasedMacProtection()) {
            throw new Refusal("badAlg", "MAC-based protection is not supported");
        }
        X509CertificateHolder[] certificates = protectedMessage.getCertificates();
        if (certificates.length == 0) {
            throw new Refusal("badMessageCheck", "no protection certificate in extraCerts");
        }
        X509CertificateHolder signer = certificates[0];
        ContentVerifierProvider verifier =
                new JcaContentVerifierProviderBuilder().setProvider("BC").build(signer);
        boolean verified;
        try {
            verified = protectedMessage.verify(verifier);
        } catch (Exception e) {
            throw new Refusal("badMessageCheck", "protection does not verify: " + e.getMessage());
        }
        if (!verified) {
            throw new Refusal("badMessageCheck",
                    "protection does not verify with the first extraCerts certificate");
        }
        rec.protectionOk = true;
        GeneralName sender = message.getHeader().getSender();
        if (sender.getTagNo() != GeneralName.directoryName
                || !X500Name.getInstance(sender.getName()).equals(signer.getSubject())) {
            throw new Refusal("badMessageCheck",
                    "sender is not the subject of the protection certificate");
        }
        ASN1OctetString senderKid = message.getHeader().getSenderKID();
        Extension ski = signer.getExtension(Extension.subjectKeyIdentifier);
        if (senderKid != null && ski != null
                && !senderKid.equals(ASN1OctetString.getInstance(ski.getParsedValue()))) {
            throw new Refusal("badMessageCheck",
                    "senderKID is not the protection certificate's key identifier");
        }
        if (!signer.getIssuer().equals(caCert.getSubject()) || !signer.isSignatureValid(
                new JcaContentVerifierProviderBuilder().setProvider("BC").build(caCert))) {
            throw new Refusal("signerNotTrusted",
                    "protection certificate " + signer.getSerialNumber().toString(16)
                            + " is not issued by the CA");
        }
        if (!signer.isValidOn(new Date())) {
            throw new Refusal("signerNotTrusted", "protection certificate is not valid now");
        }
        return signer;
    }

    private PKIMessage enrol(PKIHeader header, PKIBody body, X509CertificateHolder signer,
            Record rec) throws Exception {
        String tid = hex(header.getTransactionID());
        if (transactions.containsKey(tid)) {
            throw new Refusal("transactionIdInUse", "transactionID " + tid + " is in use");
        }
        CertReqMsg[] requests = CertReqMessages.getInstance(body.getContent()).toCertReqMsgArray();
        if (requests.length != 1) {
            throw new Refusal("badRequest", requests.length + " certificate requests, not 1");
        }
        CertificateRequestMessage request = new CertificateRequestMessage(requests[0]);
        CertTemplate template = request.getCertTemplate();
        SubjectPublicKeyInfo publicKey = template.getPublicKey();
        if (publicKey == null) {
            throw new Refusal("badCertTemplate", "the template holds no public key");
        }
        rec.popoOk = false;
        checkPopo(request, publicKey);
        rec.popoOk = true;
        X500Name subject = template.getSubject();
        int type = body.getType();
        if (type == PKIBody.TYPE_KEY_UPDATE_REQ) {
            checkOldCertId(request, signer);
            if (subject == null) {
                subject = signer.getSubject();
            }
        }
        if (subject == null || subject.getRDNs().length == 0) {
            throw new Refusal("badCertTemplate", "the template holds no subject");
        }

        Transaction transaction = new Transaction();
        transaction.requestType = type;
        transaction.signer = signer;
        transaction.certReqId = requests[0].getCertReq().getCertReqId().getValue();
        transaction.implicitConfirmAsked = requestsImplicitConfirm(header);
        rec.implicitConfirm = grantImplicit && transaction.implicitConfirmAsked;

        if (!rejectBits.isEmpty()) {
            transaction.finished = true;
            transactions.put(tid, transaction);
            PKIStatusInfo status = new PKIStatusInfo(PKIStatus.rejection,
                    statusString == null ? null : new PKIFreeText(statusString),
                    failureInfo(rejectBits));
            return certReply(header, transaction, status, null, false);
        }
        transaction.issued = issue(subject, publicKey);
        rec.issuedSerial = transaction.issued.getSerialNumber().toString(16);
        transactions.put(tid, transaction);
        if (pollCount > 0) {
            transaction.pollsLeft = pollCount;
            PKIStatusInfo waiting = new PKIStatusInfo(PKIStatus.waiting);
            return certReply(header, transaction, waiting, null, false);
        }
        return deliver(header, transaction, rec.implicitConfirm);
    }

    private static void checkPopo(CertificateRequestMessage request,
            SubjectPublicKeyInfo publicKey) throws Exception {
        if (!request.hasProofOfPossession()) {
            throw new Refusal("badPOP", "no proof of possession");
        }
        if (request.getProofOfPossessionType() != CertificateRequestMessage.popSigningKey) {
            throw new Refusal("badPOP", "proof of possession of type "
                    + request.getProofOfPossessionType() + ", not a signature");
        }
        // Not hasSigningKeyProofOfPossessionWithPKMAC(): in Bouncy Castle 1.72
        // it dereferences poposkInput, which a signature over certReq lacks.
        POPOSigningKey popo = POPOSigningKey.getInstance(
                request.toASN1Structure().getPopo().getObject());
        if (popo.getPoposkInput() != null && popo.getPoposkInput().getPublicKeyMAC() != null) {
            throw new Refusal("badPOP", "proof of possession with a MAC-based input");
        }
        boolean valid;
        try {
            valid = request.isValidSigningKeyPOP(
                    new JcaContentVerifierProviderBuilder().setProvider("BC").build(publicKey));
        } catch (Exception e) {
            throw new Refusal("badPOP", "proof of possession does not verify: " + e.getMessage());
        }
        if (!valid) {
            throw new Refusal("badPOP", "proof of possession does not verify with the requested key");
        }
    }

    private static void checkOldCertId(CertificateRequestMessage request,
            X509CertificateHolder signer) throws Refusal {
        // Read from the ASN.1: in Bouncy Castle 1.72 hasControl() finds an
        // oldCertID but getControl() returns null for it (it only builds the
        // control types it has classes for).
        Controls controls = request.toASN1Structure().getCertReq().getControls();
        if (controls == null) {
            return;
        }
        CertId old = null;
        for (AttributeTypeAndValue control : controls.toAttributeTypeAndValueArray()) {
            if (CMPObjectIdentifiers.regCtrl_oldCertID.equals(control.getType())) {
                old = CertId.getInstance(control.getValue());
            }
        }
        if (old == null) {
            return;
        }
        GeneralName issuer = old.getIssuer();
        if (issuer.getTagNo() != GeneralName.directoryName
                || !X500Name.getInstance(issuer.getName()).equals(signer.getIssuer())
                || !old.getSerialNumber().getValue().equals(signer.getSerialNumber())) {
            throw new Refusal("badCertId", "oldCertID is not the protection certificate");
        }
    }

    private static boolean requestsImplicitConfirm(PKIHeader header) {
        InfoTypeAndValue[] info = header.getGeneralInfo();
        if (info == null) {
            return false;
        }
        for (InfoTypeAndValue item : info) {
            if (CMPObjectIdentifiers.it_implicitConfirm.equals(item.getInfoType())) {
                return true;
            }
        }
        return false;
    }

    private X509CertificateHolder issue(X500Name subject, SubjectPublicKeyInfo publicKey)
            throws Exception {
        byte[] serial = new byte[16];
        random.nextBytes(serial);
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        long now = System.currentTimeMillis();
        JcaX509ExtensionUtils extensions = new JcaX509ExtensionUtils();
        X509v3CertificateBuilder builder = new X509v3CertificateBuilder(caCert.getSubject(),
                new BigInteger(serial), new Date(now - 60_000L),
                new Date(now + days * 86_400_000L), subject, publicKey)
                .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                .addExtension(Extension.keyUsage, true,
                        new KeyUsage(KeyUsage.digitalSignature | KeyUsage.nonRepudiation))
                .addExtension(Extension.subjectKeyIdentifier, false,
                        extensions.createSubjectKeyIdentifier(publicKey))
                .addExtension(Extension.authorityKeyIdentifier, false,
                        extensions.createAuthorityKeyIdentifier(caCert));
        return builder.build(signer(caKey));
    }

    private PKIMessage deliver(PKIHeader header, Transaction transaction, boolean implicit)
            throws Exception {
        PKIStatusInfo granted = new PKIStatusInfo(PKIStatus.granted);
        if (implicit) {
            transaction.finished = true;
        } else {
            transaction.awaitingConfirm = true;
        }
        return certReply(header, transaction, granted, transaction.issued, implicit);
    }

    private PKIMessage certReply(PKIHeader header, Transaction transaction, PKIStatusInfo status,
            X509CertificateHolder certificate, boolean implicit) throws Exception {
        CertifiedKeyPair pair = certificate == null ? null
                : new CertifiedKeyPair(new CertOrEncCert(new CMPCertificate(
                        certificate.toASN1Structure())));
        CertResponse response =
                new CertResponse(new ASN1Integer(transaction.certReqId), status, pair, null);
        int replyType = transaction.requestType + 1;  // ir→ip, cr→cp, kur→kup
        PKIBody body = new PKIBody(replyType,
                new CertRepMessage(null, new CertResponse[] {response}));
        InfoTypeAndValue implicitConfirm = implicit
                ? new InfoTypeAndValue(CMPObjectIdentifiers.it_implicitConfirm, DERNull.INSTANCE)
                : null;
        return answer(header, transaction, body, implicitConfirm);
    }

    private PKIMessage confirm(PKIHeader header, PKIBody body, X509CertificateHolder signer,
            Record rec) throws Exception {
        Transaction transaction = ongoing(header, signer);
        if (!transaction.awaitingConfirm) {
            throw new Refusal("badRequest", "no certificate in this transaction awaits a certConf");
        }
        CertificateConfirmationContent content = new CertificateConfirmationContent(
                CertConfirmContent.getInstance(body.getContent()),
                new DefaultDigestAlgorithmIdentifierFinder());
        CertificateStatus[] statuses = content.getStatusMessages();
        if (statuses.length != 1) {
            throw new Refusal("badRequest", statuses.length + " certificate statuses, not 1");
        }
        CertificateStatus status = statuses[0];
        if (!status.getCertRequestID().equals(transaction.certReqId)) {
            throw new Refusal("badRequest", "certReqId " + status.getCertRequestID()
                    + ", expected " + transaction.certReqId);
        }
        rec.certHashOk = status.isVerified(transaction.issued,
                new JcaDigestCalculatorProviderBuilder().setProvider("BC").build());
        if (!rec.certHashOk) {
            throw new Refusal("badCertId", "certHash is not the hash of the issued certificate");
        }
        PKIStatusInfo statusInfo = status.getStatusInfo();
        rec.clientStatus = statusInfo == null ? "accepted"
                : statusInfo.getStatus().intValue() == PKIStatus.REJECTION ? "rejection"
                : "accepted";
        transaction.awaitingConfirm = false;
        transaction.finished = true;
        return answer(header, transaction,
                new PKIBody(PKIBody.TYPE_CONFIRM, new PKIConfirmContent()), null);
    }

    private PKIMessage poll(PKIHeader header, PKIBody body, X509CertificateHolder signer,
            Record rec) throws Exception {
        Transaction transaction = ongoing(header, signer);
        if (transaction.pollsLeft <= 0) {
            throw new Refusal("badRequest", "nothing is pending in this transaction");
        }
        BigInteger[] ids = PollReqContent.getInstance(body.getContent()).getCertReqIdValues();
        if (ids.length != 1 || !ids[0].equals(transaction.certReqId)) {
            throw new Refusal("badRequest", "pollReq is not for certReqId " + transaction.certReqId);
        }
        if (--transaction.pollsLeft > 0) {
            PKIBody pollRep = new PKIBody(PKIBody.TYPE_POLL_REP, new PollRepContent(
                    new ASN1Integer(transaction.certReqId), new ASN1Integer(checkAfter)));
            return answer(header, transaction, pollRep, null);
        }
        // Asked for in the request that began the transaction, not in the pollReq.
        rec.implicitConfirm = grantImplicit && transaction.implicitConfirmAsked;
        return deliver(header, transaction, rec.implicitConfirm);
    }

    /** The transaction a follow-up message continues, with its nonce chain checked. */
    private Transaction ongoing(PKIHeader header, X509CertificateHolder signer) throws Refusal {
        Transaction transaction = transactions.get(hex(header.getTransactionID()));
        if (transaction == null) {
            throw new Refusal("badRequest", "unknown transactionID");
        }
        if (transaction.finished) {
            throw new Refusal("badRequest", "the transaction is finished");
        }
        ASN1OctetString recipNonce = header.getRecipNonce();
        if (recipNonce == null
                || !java.util.Arrays.equals(recipNonce.getOctets(), transaction.lastSenderNonce)) {
            throw new Refusal("badRecipientNonce",
                    "recipNonce is not the senderNonce of the last answer");
        }
        if (!signer.equals(transaction.signer)) {
            throw new Refusal("notAuthorized",
                    "protected by another certificate than the transaction's request");
        }
        return transaction;
    }

    // --- answers ---------------------------------------------------------------

    private PKIMessage error(PKIHeader header, Refusal refusal) {
        try {
            PKIStatusInfo status = new PKIStatusInfo(PKIStatus.rejection,
                    new PKIFreeText(refusal.getMessage()),
                    failureInfo(List.of(refusal.failureBit)));
            return answer(header, null,
                    new PKIBody(PKIBody.TYPE_ERROR, new ErrorMsgContent(status)), null);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** An answer to `request` in the way the options say: protected or not, right nonce or not. */
    private PKIMessage answer(PKIHeader request, Transaction transaction, PKIBody body,
            InfoTypeAndValue generalInfo) throws Exception {
        GeneralName sender = new GeneralName(serverCert.getSubject());
        GeneralName recipient = request == null ? PKIHeader.NULL_NAME : request.getSender();
        byte[] senderNonce = new byte[16];
        random.nextBytes(senderNonce);
        if (transaction != null) {
            transaction.lastSenderNonce = senderNonce;
        }
        byte[] recipNonce = null;
        if (request != null && request.getSenderNonce() != null) {
            recipNonce = request.getSenderNonce().getOctets();
        }
        if (wrongNonce) {
            recipNonce = new byte[16];
            random.nextBytes(recipNonce);
        }
        byte[] tid = request == null || request.getTransactionID() == null ? null
                : request.getTransactionID().getOctets();
        Date now = new Date();
        Extension ski = serverCert.getExtension(Extension.subjectKeyIdentifier);
        byte[] senderKid = ski == null ? null
                : ASN1OctetString.getInstance(ski.getParsedValue()).getOctets();

        if (unprotected) {
            PKIHeaderBuilder header = new PKIHeaderBuilder(PVNO_CMP2000, sender, recipient)
                    .setMessageTime(new ASN1GeneralizedTime(now))
                    .setSenderNonce(senderNonce);
            if (tid != null) {
                header.setTransactionID(tid);
            }
            if (recipNonce != null) {
                header.setRecipNonce(recipNonce);
            }
            if (generalInfo != null) {
                header.setGeneralInfo(generalInfo);
            }
            return new PKIMessage(header.build(), body);
        }
        ProtectedPKIMessageBuilder builder = new ProtectedPKIMessageBuilder(sender, recipient)
                .setMessageTime(now)
                .setSenderNonce(senderNonce)
                .setBody(body)
                .addCMPCertificate(serverCert);
        if (tid != null) {
            builder.setTransactionID(tid);
        }
        if (recipNonce != null) {
            builder.setRecipNonce(recipNonce);
        }
        if (senderKid != null) {
            builder.setSenderKID(senderKid);
        }
        if (generalInfo != null) {
            builder.addGeneralInfo(generalInfo);
        }
        for (X509CertificateHolder certificate : chain) {
            builder.addCMPCertificate(certificate);
        }
        return builder.build(signer(serverKey)).toASN1Structure();
    }

    private static ContentSigner signer(PrivateKey key) throws Exception {
        String algorithm = key.getAlgorithm().startsWith("EC") ? "SHA256withECDSA"
                : "SHA256withRSA";
        return new JcaContentSignerBuilder(algorithm).setProvider("BC").build(key);
    }

    /** PKIFailureInfo with the named bits set; bit 0 is the first bit of the first octet. */
    private static PKIFailureInfo failureInfo(List<Integer> bits) {
        int highest = bits.stream().mapToInt(Integer::intValue).max().orElse(0);
        byte[] octets = new byte[highest / 8 + 1];
        for (int bit : bits) {
            octets[bit / 8] |= (byte) (0x80 >> (bit % 8));
        }
        int padBits = 7 - highest % 8;
        return new PKIFailureInfo((ASN1BitString) new DERBitString(octets, padBits));
    }

    // --- the record ------------------------------------------------------------

    private void writeLog(Record rec, String stem) throws IOException {
        StringBuilder line = new StringBuilder("{");
        field(line, "type", rec.type);
        field(line, "transactionID", rec.transactionId);
        field(line, "senderNonce", rec.senderNonce);
        field(line, "recipNonce", rec.recipNonce);
        field(line, "protection_ok", rec.protectionOk);
        field(line, "popo_ok", rec.popoOk);
        field(line, "certhash_ok", rec.certHashOk);
        field(line, "error", rec.error);
        field(line, "answer", rec.answer);
        field(line, "issued_serial", rec.issuedSerial);
        field(line, "implicit_confirm", rec.implicitConfirm);
        field(line, "client_status", rec.clientStatus);
        field(line, "file", stem + ".der");
        line.setLength(line.length() - 2);
        line.append("}\n");
        Files.writeString(record.resolve("log.jsonl"), line.toString(), StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    private static void field(StringBuilder line, String name, Object value) {
        line.append('"').append(name).append("\": ");
        if (value == null) {
            line.append("null");
        } else if (value instanceof Boolean) {
            line.append(value);
        } else {
            line.append('"');
            for (char c : value.toString().toCharArray()) {
                switch (c) {
                    case '"' -> line.append("\\\"");
                    case '\\' -> line.append("\\\\");
                    default -> {
                        if (c < 0x20) {
                            line.append(String.format("\\u%04x", (int) c));
                        } else {
                            line.append(c);
                        }
                    }
                }
            }
            line.append('"');
        }
        line.append(", ");
    }

    private static String hex(ASN1OctetString value) {
        return value == null ? null : HexFormat.of().formatHex(value.getOctets());
    }

    private static String bodyName(int type) {
        return type >= 0 && type < BODY_NAMES.length ? BODY_NAMES[type] : "body" + type;
    }
}
