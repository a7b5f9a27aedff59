CREATE TABLE "customers" (
	"customerid" serial PRIMARY KEY NOT NULL,
	"firstname" varchar(50) NOT NULL,
	"lastname" varchar(50) NOT NULL,
	"address1" varchar(50) NOT NULL,
	"address2" varchar(50),
	"city" varchar(50) NOT NULL,
	"state" varchar(50),
	"zip" integer,
	"country" varchar(50) NOT NULL,
	"region" smallint NOT NULL,
	"email" varchar(50),
	"phone" varchar(50),
	"creditcardtype" integer NOT NULL,
	"creditcard" varchar(50) NOT NULL,
	"creditcardexpiration" varchar(50) NOT NULL,
	"username" varchar(50) NOT NULL,
	"password" varchar(50) NOT NULL,
	"age" smallint,
	"income" integer,
	"gender" varchar(1)
);
--> statement-breakpoint
CREATE TABLE "orders" (
	"orderid" serial PRIMARY KEY NOT NULL,
	"orderdate" date NOT NULL,
	"customerid" integer,
	"netamount" numeric(12, 2) NOT NULL,
	"tax" numeric(12, 2) NOT NULL,
	"totalamount" numeric(12, 2) NOT NULL
);
--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "fk_customerid" FOREIGN KEY ("customerid") REFERENCES "public"."customers"("customerid") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "ix_cust_username" ON "customers" USING btree ("username");--> statement-breakpoint
CREATE INDEX "ix_order_custid" ON "orders" USING btree ("customerid");