// A Java program against the artifact com.fundcore:fundcore (the installed jar, as Maven resolves it): the engine's API is
// callable from Java source, checked exceptions included. `make test-java` compiles it with
// javac and runs it; it prints one line per check, then "N passed, M failed", and exits
// non-zero on any mismatch.
import com.fundcore.AuditAction;
import com.fundcore.AuditEvent;
import com.fundcore.AuditEventPage;
import com.fundcore.Category;
import com.fundcore.Channel;
import com.fundcore.Client;
import com.fundcore.ClientPage;
import com.fundcore.DeliveryException;
import com.fundcore.DispatchReport;
import com.fundcore.Durability;
import com.fundcore.EngineConfig;
import com.fundcore.Fund;
import com.fundcore.FundEngine;
import com.fundcore.FundException;
import com.fundcore.FundExceptionExtKt;
import com.fundcore.JavaNotifier;
import com.fundcore.Locale;
import com.fundcore.Notification;
import com.fundcore.NotificationStatus;
import com.fundcore.Notifier;
import com.fundcore.Transaction;
import com.fundcore.TransactionKind;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

public final class JavaInterop {
    private static int passed;
    private static int failed;

    /** A check that may call the engine (whose methods declare FundException). */
    private interface Check {
        void run() throws Exception;
    }

    private static void check(String name, Check body) {
        try {
            body.run();
            passed++;
            System.out.println("ok    " + name);
        } catch (Throwable e) {
            failed++;
            System.out.println("FAIL  " + name + ": " + e);
        }
    }

    private static void expect(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual)) {
            throw new AssertionError(what + ": expected <" + expected + ">, got <" + actual + ">");
        }
    }

    /** Exactly equal, scale included: "80000.00" is not "80000". */
    private static void expectMoney(String expected, BigDecimal actual, String what) {
        expect(new BigDecimal(expected), actual, what);
    }

    public static void main(String[] args) throws Exception {
        try (FundEngine engine = FundEngine.Companion.temporary()) {
            Client ana = engine.registerClient("Ana", "ana@example.com", "+573001234567", Channel.EMAIL);
            Transaction tx = engine.subscribe(ana.getId(), 1, new BigDecimal("80000"), "k-1");
            FundException refusal = null;
            try {
                engine.subscribe(ana.getId(), 4, new BigDecimal("450000"), null);
            } catch (FundException.InsufficientBalance e) {
                refusal = e; // e.getCode(), e.getReason(): the stable code and the message
            }
            List<Transaction> history = engine.history(ana.getId(), 50, null);

            check("registerClient: a new client has the initial balance", () -> {
                expectMoney("500000.00", ana.getBalance(), "balance");
                expect(Channel.EMAIL, ana.getChannel(), "channel");
            });
            check("subscribe: fund id from a Java int, BigDecimal amount, idempotency key", () -> {
                expect(TransactionKind.SUBSCRIPTION, tx.getKind(), "kind");
                expect(1L, tx.getFundId(), "fund id");
                expectMoney("80000.00", tx.getAmount(), "amount");
                expectMoney("420000.00", tx.getBalanceAfter(), "balance after");
                expect(tx, engine.subscribe(ana.getId(), 1, new BigDecimal("80000"), "k-1"), "idempotent replay");
            });
            FundException caught = refusal;
            check("subscribe: the exact INSUFFICIENT_BALANCE refusal is a caught exception with its code", () -> {
                if (caught == null) throw new AssertionError("subscribing 450000 to fund 4 was not refused");
                FundException.InsufficientBalance insufficient = (FundException.InsufficientBalance) caught;
                expect("INSUFFICIENT_BALANCE", insufficient.getCode(), "code");
                expect("No tiene saldo disponible para vincularse al fondo FDO-ACCIONES", insufficient.getReason(), "reason");
                expect("INSUFFICIENT_BALANCE", FundExceptionExtKt.getCode(caught), "code on the base type");
                expect(insufficient.getReason(), FundExceptionExtKt.getReason(caught), "reason on the base type");
                expectMoney("420000.00", engine.client(ana.getId()).getBalance(), "balance unchanged");
            });
            check("OUTCOME_UNKNOWN: a case Java can catch apart from STORAGE_ERROR", () -> {
                FundException unknown = new FundException.OutcomeUnknown("OUTCOME_UNKNOWN", "puede haberse guardado", "puede haberse guardado", "it may have been saved");
                String action;
                try {
                    throw unknown;
                } catch (FundException.OutcomeUnknown e) {
                    action = "repeat with the same idempotency key";
                } catch (FundException.StorageException e) {
                    action = "nothing was saved";
                }
                expect("repeat with the same idempotency key", action, "caught as its own case");
                expect("OUTCOME_UNKNOWN", FundExceptionExtKt.getCode(unknown), "code on the base type");
                expect("puede haberse guardado", FundExceptionExtKt.getReason(unknown), "reason on the base type");
            });
            check("history: newest first, the refusal left no trace", () -> {
                expect(List.of(tx), history, "history");
                expect(List.of(1L), engine.subscriptions(ana.getId()).stream().map(s -> s.getFundId()).toList(), "subscriptions");
            });
            check("fund ids: funds(), fund(long), a negative id is FUND_NOT_FOUND with the id as given", () -> {
                List<Fund> funds = engine.funds();
                expect(5, funds.size(), "catalogue size");
                Fund first = engine.fund(1);
                expect(1L, first.getId(), "fund id");
                expect("FPV_BTG_PACTUAL_RECAUDADORA", first.getName(), "fund name");
                expectMoney("75000.00", first.getMinimum(), "minimum");
                try {
                    engine.subscribe(ana.getId(), -3, null, null);
                    throw new AssertionError("a negative fund id was accepted");
                } catch (FundException.FundNotFound e) {
                    expect("FUND_NOT_FOUND", e.getCode(), "code");
                    expect("No existe el fondo -3", e.getReason(), "reason");
                }
            });
            check("history: a limit outside 1..200 is VALIDATION_ERROR on limit", () -> {
                for (int limit : new int[] {-1, 0, 201}) {
                    try {
                        engine.history(ana.getId(), limit, null);
                        throw new AssertionError("limit " + limit + " was accepted");
                    } catch (FundException.ValidationException e) {
                        expect("VALIDATION_ERROR", e.getCode(), "code");
                        expect("limit", e.getField(), "field");
                    }
                }
            });
            check("cancel: refunds the stored amount", () -> {
                Transaction cancellation = engine.cancel(ana.getId(), 1, null);
                expect(TransactionKind.CANCELLATION, cancellation.getKind(), "kind");
                expectMoney("80000.00", cancellation.getAmount(), "refund");
                expectMoney("500000.00", cancellation.getBalanceAfter(), "balance after");
                expect(List.of(cancellation, tx), engine.history(ana.getId(), 50, null), "history");
            });
            check("notifier: a Java lambda delivers; DispatchReport from Java", () -> {
                List<Notification> sent = new ArrayList<>();
                Notifier gateway = sent::add;
                DispatchReport report = engine.dispatchNotifications(gateway, 100);
                expect(new DispatchReport(2, 0, 0), report, "report");
                expect(2, sent.size(), "sent");
                expect("ana@example.com", sent.get(0).getRecipient(), "recipient");
                for (Notification n : engine.notifications(ana.getId())) {
                    expect(NotificationStatus.DELIVERED, n.getStatus(), "status");
                    expect(1, n.getAttempts(), "attempts");
                }
            });
            check("notifier: a JavaNotifier may throw DeliveryException.Permanent", () -> {
                Client luis = engine.registerClient("Luis", "luis@example.com", "+573109876543", Channel.SMS);
                engine.subscribe(luis.getId(), 2, null, null);
                JavaNotifier bouncing = new JavaNotifier() {
                    @Override
                    public void deliver(Notification notification) throws DeliveryException {
                        throw new DeliveryException.Permanent("number does not exist");
                    }
                };
                expect(new DispatchReport(0, 0, 1), engine.dispatchNotifications(bouncing, 100), "report");
                Notification failedEntry = engine.notifications(luis.getId()).get(0);
                expect(NotificationStatus.FAILED, failedEntry.getStatus(), "status");
                expect(true, failedEntry.getLastError().contains("number does not exist"), "last error: " + failedEntry.getLastError());
                expect(1, engine.retryFailedNotifications(10), "requeued");
            });
        }

        check("administration: createFund, updateFund, updateClient, pages and the audit trail from Java", () -> {
            try (FundEngine engine = FundEngine.Companion.temporary()) {
                Fund created = engine.createFund(6, "RENTA-FIJA", new BigDecimal("10000"), Category.FIC, "ops", "req-1");
                expectMoney("10000.00", created.getMinimum(), "minimum");
                try {
                    engine.createFund(6, "OTRO", new BigDecimal("5000"), Category.FPV, "ops", null);
                    throw new AssertionError("a taken fund id was accepted");
                } catch (FundException.FundAlreadyExists e) {
                    expect("FUND_ALREADY_EXISTS", e.getCode(), "code");
                    expect("Ya existe el fondo 6", e.getReason(), "reason");
                }
                // Each optional change is passed explicitly: null leaves the field as it is.
                Fund closed = engine.updateFund(6, null, null, false, "ops", null);
                expect(false, closed.getActive(), "active");
                Client ana = engine.registerClient("Ana", "ana@example.com", "+573001234567", Channel.EMAIL);
                Client changed = engine.updateClient(ana.getId(), null, null, "+573005550000", Channel.SMS, ana.getId(), null);
                expect(Channel.SMS, changed.getChannel(), "channel");
                ClientPage clients = engine.clients(10, null);
                expect(List.of(changed), clients.getItems(), "clients");
                expect(null, clients.getNext(), "no next page");
                AuditEventPage page = engine.auditEvents(2, null);
                AuditEvent latest = page.getItems().get(0);
                expect(AuditAction.CLIENT_UPDATED, latest.getAction(), "action");
                expect(Map.of("channel", "email", "phone", "+573001234567"), latest.getBefore(), "before");
                expect("sms", latest.getAfter().get("channel"), "after");
                expect("false", page.getItems().get(1).getAfter().get("active"), "a flag as text");
                AuditEvent first = engine.auditEvents(2, page.getNext()).getItems().get(0);
                expect(AuditAction.FUND_CREATED, first.getAction(), "first event");
                expect("req-1", first.getRequestId(), "request id");
            }
        });

        check("EngineConfig: built from Java, boxed Integer and Long settings", () -> {
            EngineConfig config = new EngineConfig(
                    new BigDecimal("100000"), null, Locale.EN, false, 3, 1L, 1000L, new Durability.Periodic(200L), null);
            try (FundEngine engine = FundEngine.Companion.withConfig(null, config)) {
                expect(Locale.EN, engine.locale(), "locale");
                Client bo = engine.registerClient("Bo", "bo@example.com", "+573001112233", Channel.EMAIL);
                expectMoney("100000.00", bo.getBalance(), "initial balance");
                try {
                    engine.fund(-3);
                    throw new AssertionError("a negative fund id was found");
                } catch (FundException.FundNotFound e) {
                    expect("Fund -3 not found", e.getReason(), "English reason");
                }
            }
            try {
                FundEngine.Companion.withConfig(null, new EngineConfig(null, null, null, null, -1, null, null, null, null)).close();
                throw new AssertionError("maxAttempts -1 was accepted");
            } catch (FundException.ValidationException e) {
                expect("max_attempts", e.getField(), "field");
            }
        });

        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
